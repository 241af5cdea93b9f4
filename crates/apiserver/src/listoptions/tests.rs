//! The list, watch and write options, table-tested.
use super::*;

fn query(k: &str, v: &str) -> Query {
    Query::from([(k.to_owned(), v.to_owned())])
}

/// A query of these parameters.
fn q(pairs: &[(&str, &str)]) -> Query {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_read_waits_for_the_resource_version_it_names() {
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Pairs, Option<u64>); 5] = [
        (&[], None),
        (&[("resourceVersion", "0")], None),
        (&[("resourceVersion", "42")], Some(42)),
        (
            &[
                ("resourceVersion", "42"),
                ("resourceVersionMatch", "NotOlderThan"),
            ],
            Some(42),
        ),
        (
            &[("resourceVersion", "42"), ("resourceVersionMatch", "Exact")],
            Some(42),
        ),
    ];
    for (pairs, want) in cases {
        assert_eq!(must_have_reached(&q(pairs)), Ok(want), "{pairs:?}");
    }
    assert!(must_have_reached(&q(&[("resourceVersion", "x")])).is_err());
}

#[test]
fn resource_versions_are_unsigned_integers() {
    for (rv, want) in [
        ("", Ok(None)),
        ("0", Ok(Some(0))),
        ("39", Ok(Some(39))),
        (
            "abc",
            Err(
                "invalid resource version: resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax",
            ),
        ),
        (
            "+5",
            Err(
                "invalid resource version: resourceVersion: Invalid value: \"+5\": strconv.ParseUint: parsing \"+5\": invalid syntax",
            ),
        ),
        (
            "-1",
            Err(
                "invalid resource version: resourceVersion: Invalid value: \"-1\": strconv.ParseUint: parsing \"-1\": invalid syntax",
            ),
        ),
        (
            "99999999999999999999",
            Err(
                "invalid resource version: resourceVersion: Invalid value: \"99999999999999999999\": strconv.ParseUint: parsing \"99999999999999999999\": value out of range",
            ),
        ),
    ] {
        let got = resource_version(&query("resourceVersion", rv));
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{rv}"),
            (Err(s), Err(want)) => {
                assert_eq!((s.code, s.message.as_str()), (400, want), "{rv}")
            }
            (got, want) => panic!("{rv}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(resource_version(&Query::new()).expect("absent"), None);
}

#[test]
fn unknown_write_options_are_refused_never_ignored() {
    for (verb, key, value, want) in [
        ("create", "dryRun", "All", None),
        ("create", "fieldValidation", "Strict", None),
        ("patch", "fieldValidation", "Ignore", None),
        ("get", "dryRun", "Foo", None),
        (
            "create",
            "dryRun",
            "Foo",
            Some(
                r#"CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Foo"}: supported values: "All""#,
            ),
        ),
        (
            "delete",
            "dryRun",
            "all",
            Some(
                r#"DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"all"}: supported values: "All""#,
            ),
        ),
        (
            "update",
            "fieldValidation",
            "strict",
            Some(
                r#"UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "Ignore", "Strict", "Warn""#,
            ),
        ),
    ] {
        let got = write_options(verb, &query(key, value)).err();
        assert_eq!(
            got.as_ref().map(|s| s.code),
            want.map(|_| 422),
            "{verb} {key}={value}"
        );
        assert_eq!(
            got.map(|s| s.message).as_deref(),
            want,
            "{verb} {key}={value}"
        );
    }
}

#[test]
fn watch_timeouts_as_kube_apiserver_reads_them() {
    for (t, want) in [
        ("-5", Duration::ZERO),
        ("0", DEFAULT_WATCH_TIMEOUT),
        ("1", Duration::from_secs(1)),
        ("+1", Duration::from_secs(1)),
        ("300", Duration::from_secs(300)),
        ("99999", MAX_WATCH_TIMEOUT),
    ] {
        let (_, seconds) = list_numbers(&query("timeoutSeconds", t)).unwrap();
        assert_eq!(watch_timeout(seconds), want, "{t}");
    }
    assert_eq!(watch_timeout(None), DEFAULT_WATCH_TIMEOUT);
}

#[test]
fn list_numbers_and_booleans_decode_as_apimachinery_converts_them() {
    for (name, v, message) in [
        (
            "timeoutSeconds",
            "x",
            "strconv.ParseInt: parsing \"x\": invalid syntax",
        ),
        (
            "limit",
            "abc",
            "strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            "limit",
            "",
            "strconv.ParseInt: parsing \"\": invalid syntax",
        ),
        (
            "limit",
            "1.5",
            "strconv.ParseInt: parsing \"1.5\": invalid syntax",
        ),
        (
            "limit",
            "99999999999999999999",
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
        ),
    ] {
        let refused = list_numbers(&query(name, v)).unwrap_err();
        assert_eq!(
            (refused.code, refused.message.as_str()),
            (400, message),
            "{name}={v}"
        );
    }
    for (v, limit) in [("500", Some(500)), ("0", None), ("-1", None)] {
        assert_eq!(list_numbers(&query("limit", v)).unwrap().0, limit, "{v}");
    }
    for (v, truth) in [
        ("true", true),
        ("1", true),
        ("", true),
        ("yes", true),
        ("0", false),
        ("false", false),
        ("FALSE", false),
        ("False", false),
    ] {
        assert_eq!(query_bool(v), truth, "{v:?}");
    }
}

#[test]
fn watch_options_are_read_as_kube_apiserver_reads_them() {
    let initial = |not_older_than| WatchStart::InitialState { not_older_than };
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    type Want = Result<(WatchStart, bool), &'static str>;
    let cases: [(&str, Pairs<'_>, Want); 8] = [
        (
            "no version: the state, then changes",
            &[],
            Ok((initial(None), false)),
        ),
        (
            "version 0: the same",
            &[("resourceVersion", "0")],
            Ok((initial(None), false)),
        ),
        (
            "a version: the changes after it",
            &[("resourceVersion", "7")],
            Ok((WatchStart::After(7), false)),
        ),
        (
            "a streaming list",
            &[
                ("sendInitialEvents", "true"),
                ("resourceVersionMatch", "NotOlderThan"),
                ("allowWatchBookmarks", "true"),
            ],
            Ok((initial(None), true)),
        ),
        (
            "a streaming list not older than 7",
            &[
                ("sendInitialEvents", "true"),
                ("resourceVersionMatch", "NotOlderThan"),
                ("resourceVersion", "7"),
                ("allowWatchBookmarks", "true"),
            ],
            Ok((initial(Some(7)), true)),
        ),
        (
            "no initial events: from now on",
            &[
                ("sendInitialEvents", "false"),
                ("resourceVersionMatch", "NotOlderThan"),
            ],
            Ok((WatchStart::Now, false)),
        ),
        (
            "initial events without the match",
            &[("sendInitialEvents", "true")],
            Err("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
        ),
        (
            "a match without initial events",
            &[
                ("resourceVersionMatch", "NotOlderThan"),
                ("resourceVersion", "7"),
            ],
            Err("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"),
        ),
    ];
    for (case, pairs, want) in cases {
        let got = WatchOptions::parse(&q(pairs));
        match (got, want) {
            (Ok(o), Ok((start, streaming))) => {
                assert_eq!((o.start, o.streaming_list), (start, streaming), "{case}");
            }
            (Err(s), Err(message)) => {
                assert_eq!(s.code, 422, "{case}");
                assert!(s.message.contains(message), "{case}: {}", s.message);
            }
            (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
        }
    }
}
