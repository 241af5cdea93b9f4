//! Kubernetes' own strategic merge cases (`strategicpatch/patch_test.go`, 1.33), over the
//! schema of its `mergeItem` test type; each expected value was checked against the Go code,
//! list order included.

use serde_json::Value;

use super::*;

static MERGE_ITEM: Schema = Schema {
    fields: &[
        (
            "mergingList",
            Field::nested(Strategy::MergeByKey("name"), &MERGE_ITEM),
        ),
        (
            "nonMergingList",
            Field::nested(Strategy::Untagged, &MERGE_ITEM),
        ),
        ("mergingIntList", Field::of(Strategy::Merge)),
        (
            "mergeItemPtr",
            Field::nested(Strategy::MergeByKey("name"), &MERGE_ITEM),
        ),
        ("replacingItem", Field::of(Strategy::Replace)),
        (
            "retainKeysMap",
            Field::nested(Strategy::Untagged, &RETAIN_KEYS_ITEM),
        ),
        (
            "retainKeysMergingList",
            Field::nested(Strategy::MergeByKey("name"), &MERGE_ITEM),
        ),
    ],
};

static RETAIN_KEYS_ITEM: Schema = Schema {
    fields: &[
        ("mergingIntList", Field::of(Strategy::Merge)),
        (
            "mergingList",
            Field::nested(Strategy::MergeByKey("name"), &MERGE_ITEM),
        ),
        (
            "nonMergingList",
            Field::nested(Strategy::Untagged, &MERGE_ITEM),
        ),
    ],
};

#[test]
fn kubernetes_strategic_merge_cases_give_kubernetes_results() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("../testdata/strategic_merge_cases.json")).unwrap();
    assert!(cases.len() >= 40);
    check(&cases);
}

/// 400 generated patches (merge lists with deletions, replacements, orders, duplicates,
/// primitive deletions, retainKeys, nulls), each with what Kubernetes' own code makes of it
/// given an original whose lists are as long as their arrays (as `ToUnstructured` makes
/// them in kube-apiserver).
#[test]
fn generated_patches_give_what_kubernetes_code_gives() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("../testdata/strategic_merge_random.json")).unwrap();
    assert_eq!(cases.len(), 400);
    check(&cases);
}

fn check(cases: &[Value]) {
    let mut failed = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let patch = case["patch"].as_object().unwrap();
        let got = apply(&case["original"], patch, &MERGE_ITEM);
        let ok = match (case.get("expectedError").and_then(Value::as_str), &got) {
            (Some(error), Err(e)) => e.to_string().contains(error),
            (None, Ok(v)) => *v == case["expected"],
            _ => false,
        };
        if !ok {
            failed.push(format!(
                "{name}:\n  got  {got:?}\n  want {}",
                case.get("expected").unwrap_or(&case["expectedError"])
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
