use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn user(name: &str) -> Asked {
    Asked::User(name.into())
}

/// A case: its name, the headers sent, what they ask.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<Asked>);

#[test]
fn headers_read_as_kube_apiserver_reads_them() {
    let cases: &[Case] = &[
        ("no headers", &[], vec![]),
        (
            "an empty user asks nothing",
            &[("Impersonate-User", "")],
            vec![],
        ),
        (
            "a user",
            &[("Impersonate-User", "jane")],
            vec![user("jane")],
        ),
        (
            "a service account",
            &[(
                "Impersonate-User",
                "system:serviceaccount:kube-system:default",
            )],
            vec![Asked::ServiceAccount {
                namespace: "kube-system".into(),
                name: "default".into(),
            }],
        ),
        (
            "a malformed service account name is a user",
            &[("Impersonate-User", "system:serviceaccount:Bad_NS:x")],
            vec![user("system:serviceaccount:Bad_NS:x")],
        ),
        (
            "three parts is a user",
            &[("Impersonate-User", "system:serviceaccount:a:b:c")],
            vec![user("system:serviceaccount:a:b:c")],
        ),
        (
            "groups in order, extras by key, the UID last",
            &[
                ("Impersonate-Uid", "1234"),
                ("Impersonate-Extra-Scopes", "view"),
                ("Impersonate-Group", "b"),
                ("Impersonate-User", "jane"),
                ("Impersonate-Extra-Acme.com%2Fproject", "p1"),
                ("Impersonate-Group", "a"),
                ("Impersonate-Extra-Scopes", "edit"),
            ],
            vec![
                user("jane"),
                Asked::Group("b".into()),
                Asked::Group("a".into()),
                Asked::Extra {
                    key: "acme.com/project".into(),
                    value: "p1".into(),
                },
                Asked::Extra {
                    key: "scopes".into(),
                    value: "view".into(),
                },
                Asked::Extra {
                    key: "scopes".into(),
                    value: "edit".into(),
                },
                Asked::Uid("1234".into()),
            ],
        ),
        (
            "a malformed escape keeps the key as sent",
            &[
                ("Impersonate-User", "jane"),
                ("Impersonate-Extra-a%zz", "v"),
            ],
            vec![
                user("jane"),
                Asked::Extra {
                    key: "a%zz".into(),
                    value: "v".into(),
                },
            ],
        ),
    ];
    for (case, h, want) in cases {
        assert_eq!(&asked(&headers(h)).expect(case), want, "{case}");
    }
}

#[test]
fn groups_extras_or_a_uid_without_a_user_are_refused() {
    for h in [
        &[("Impersonate-Group", "admins")][..],
        &[("Impersonate-Extra-Scopes", "view")],
        &[("Impersonate-Uid", "1")],
        &[("Impersonate-User", ""), ("Impersonate-Group", "admins")],
    ] {
        let e = asked(&headers(h)).expect_err("refused");
        assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"), "{h:?}");
        assert!(
            e.message.contains("without impersonating a user"),
            "{}",
            e.message
        );
    }
}

#[test]
fn what_each_part_must_be_allowed() {
    let cases = [
        (user("jane"), ("", "users", "", "", "jane")),
        (
            Asked::ServiceAccount {
                namespace: "ns".into(),
                name: "sa".into(),
            },
            ("", "serviceaccounts", "", "ns", "sa"),
        ),
        (Asked::Group("g".into()), ("", "groups", "", "", "g")),
        (
            Asked::Extra {
                key: "scopes".into(),
                value: "view".into(),
            },
            ("authentication.k8s.io", "userextras", "scopes", "", "view"),
        ),
        (
            Asked::Uid("1".into()),
            ("authentication.k8s.io", "uids", "", "", "1"),
        ),
    ];
    for (a, (group, resource, sub, ns, name)) in cases {
        let at = a.attributes();
        assert_eq!(
            (
                at.verb.as_str(),
                at.group.as_str(),
                at.resource.as_str(),
                at.subresource.as_str(),
                at.namespace.as_str(),
                at.name.as_str(),
                at.is_resource
            ),
            ("impersonate", group, resource, sub, ns, name, true),
            "{a:?}"
        );
    }
}

#[test]
fn the_user_acted_as() {
    let groups = |u: &UserInfo| u.groups.join(",");
    let u = acting_as(&[user("jane")]);
    assert_eq!(
        (u.name.as_str(), groups(&u)),
        ("jane", "system:authenticated".into())
    );
    let u = acting_as(&[user("jane"), Asked::Group("dev".into())]);
    assert_eq!(groups(&u), "dev,system:authenticated");
    let u = acting_as(&[user("jane"), Asked::Group("system:unauthenticated".into())]);
    assert_eq!(groups(&u), "system:unauthenticated");
    let u = acting_as(&[user("system:anonymous")]);
    assert_eq!(groups(&u), "system:unauthenticated");
    let sa = Asked::ServiceAccount {
        namespace: "ns".into(),
        name: "sa".into(),
    };
    let u = acting_as(std::slice::from_ref(&sa));
    assert_eq!(
        (u.name.as_str(), groups(&u)),
        (
            "system:serviceaccount:ns:sa",
            "system:serviceaccounts,system:serviceaccounts:ns,system:authenticated".into()
        )
    );
    let u = acting_as(&[sa, Asked::Group("only".into())]);
    assert_eq!(groups(&u), "only,system:authenticated");
    let u = acting_as(&[
        user("jane"),
        Asked::Extra {
            key: "scopes".into(),
            value: "a".into(),
        },
        Asked::Extra {
            key: "scopes".into(),
            value: "b".into(),
        },
        Asked::Uid("42".into()),
    ]);
    assert_eq!(u.extra["scopes"], ["a", "b"]);
    assert_eq!(u.uid, "42");
}

#[test]
fn a_refusal_is_worded_as_kube_apiserver_words_it() {
    let bob = UserInfo {
        name: "bob".into(),
        ..Default::default()
    };
    let s = forbidden(&bob, &user("jane").attributes());
    assert_eq!(s.code, 403);
    assert_eq!(
        s.message,
        r#"users "jane" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    let extra = Asked::Extra {
        key: "scopes".into(),
        value: "view".into(),
    };
    assert_eq!(
        forbidden(&bob, &extra.attributes()).message,
        r#"userextras.authentication.k8s.io "view" is forbidden: User "bob" cannot impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope"#
    );
}
