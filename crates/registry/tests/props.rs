//! The registry crate's parsers under attack: image references, manifest and index JSON, and
//! hosts.toml, fed arbitrary and adversarial input. None may panic; what they accept must be
//! what they promise (a reference prints back to itself, a manifest keeps its fields, a mirror
//! URL becomes a well-formed base URL, a registry name is one path component).

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Component, Path};

use longshore_registry::hosts::{Scheme, hosts_for};
use longshore_registry::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Manifest, OCI_INDEX, OCI_MANIFEST, Reference,
};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------- image references

/// Characters references are made of, plus the ones they must not contain.
fn reference_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        "[a-zA-Z0-9._:/@\\-\\[\\] ]{0,80}",
        // Mostly well-formed: domain, path, tag, digest, each perturbed.
        (
            prop_oneof![
                Just(String::new()),
                "[a-z0-9.\\-]{1,12}(:[0-9]{1,5})?/",
                (
                    prop_oneof![
                        Just("::1".to_string()),
                        Just("fe80::1".to_string()),
                        Just("2001:db8::5".to_string()),
                        "[0-9a-f:]{2,12}"
                    ],
                    "[a-z:0-9]{0,6}",
                )
                    .prop_map(|(v6, tail)| format!("[{v6}]{tail}/")),
                Just("localhost/".to_string()),
                Just("Foo/".to_string()),
            ],
            "[a-z0-9]{1,6}([._\\-]{1,3}[a-z0-9]{1,6}){0,2}(/[a-z0-9]{1,6}){0,2}",
            prop_oneof![Just(String::new()), "(:[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,10})"],
            prop_oneof![
                Just(String::new()),
                "@sha256:[0-9a-f]{64}",
                "@sha256:[0-9a-fA-F]{60,66}"
            ],
        )
            .prop_map(|(d, p, t, g)| format!("{d}{p}{t}{g}")),
    ]
}

/// The registry grammar parse() documents: a host name or IPv4 of labels `[A-Za-z0-9-]`
/// (no leading or trailing `-`), or a bracketed IPv6 address, with an optional numeric port.
fn is_valid_registry(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, tail)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match tail {
            "" => return true,
            t => match t.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return false,
            },
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    port_ok && host_ok
}

fn is_valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Separators between alphanumeric runs: ".", "_", "__" or dashes.
    c.split(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .all(|s| s == "." || s == "_" || s == "__" || s.bytes().all(|b| b == b'-'))
}

fn check_reference(input: &str) -> Result<(), TestCaseError> {
    let Ok(r) = Reference::parse(input) else {
        return Ok(());
    };
    // What an accepted reference promises.
    prop_assert!(
        is_valid_registry(r.registry()),
        "registry {:?}",
        r.registry()
    );
    prop_assert!(
        r.repository().split('/').all(is_valid_component),
        "repository {:?}",
        r.repository()
    );
    prop_assert!(r.name().len() <= 255);
    prop_assert!(r.tag().is_some() || r.digest().is_some());
    if let Some(t) = r.tag() {
        prop_assert!(!t.is_empty() && t.len() <= 128);
        prop_assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        );
        prop_assert!(!t.starts_with(['.', '-']));
    }
    let shown = r.to_string();
    prop_assert!(!shown.chars().any(char::is_whitespace), "{shown:?}");
    // The display form is the normalized reference: it parses back to the same one.
    let again = Reference::parse(&shown).unwrap();
    prop_assert_eq!(&again, &r);
    prop_assert_eq!(again.to_string(), shown);
    // The registry names a hosts.toml directory: it must be one plain path component.
    let joined = Path::new("/etc/longshore/certs.d").join(r.registry());
    let comps: Vec<_> = joined.components().collect();
    prop_assert_eq!(comps.len(), 5, "{:?}", joined);
    prop_assert!(matches!(comps[4], Component::Normal(_)));
    Ok(())
}

proptest! {
    #[test]
    fn references_never_panic_and_print_back(input in reference_text()) {
        check_reference(&input)?;
    }

    #[test]
    fn whitespace_or_uppercase_in_the_repository_is_refused(
        path in "[a-z0-9]{1,8}/[a-z0-9]{1,8}",
        at in 0usize..100,
        bad in prop_oneof![Just(' '), Just('\t'), Just('\n'), Just('\u{a0}'), "[A-Z]"
            .prop_map(|s| s.chars().next().unwrap())],
    ) {
        let mut chars: Vec<char> = path.chars().collect();
        // Anywhere after the first component (a first component with uppercase is a host).
        let first = path.find('/').unwrap() + 1;
        let at = first + at % (chars.len() - first + 1);
        chars.insert(at, bad);
        let input: String = chars.into_iter().collect();
        prop_assert!(Reference::parse(&format!("registry.example/{input}")).is_err(), "{input:?}");
        prop_assert!(Reference::parse(&format!("{input}:tag")).is_err(), "{input:?}");
    }

    #[test]
    fn well_formed_references_keep_their_parts(
        host in "[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}",
        port in proptest::option::of(1u16..),
        repo in "[a-z0-9]{1,6}([._][a-z0-9]{1,6})?(/[a-z0-9]{1,6}(-{1,2}[a-z0-9]{1,4})?){0,3}",
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,20}"),
        digest in proptest::option::of("[0-9a-f]{64}"),
    ) {
        let registry = match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let mut input = format!("{registry}/{repo}");
        if let Some(t) = &tag {
            input.push(':');
            input.push_str(t);
        }
        if let Some(d) = &digest {
            input.push_str("@sha256:");
            input.push_str(d);
        }
        let r = Reference::parse(&input).unwrap();
        prop_assert_eq!(r.registry(), registry);
        prop_assert_eq!(r.repository(), repo);
        match (&tag, &digest) {
            (None, None) => prop_assert_eq!(r.tag(), Some("latest")),
            _ => prop_assert_eq!(r.tag(), tag.as_deref()),
        }
        prop_assert_eq!(r.digest().map(|d| d.hex().to_string()), digest);
        check_reference(&input)?;
    }
}

// ---------------------------------------------------------------- manifests and indexes

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Arbitrary JSON, biased toward the keys and values manifests have.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        Just(json!(2)),
        Just(json!(DIGEST)),
        Just(json!(OCI_MANIFEST)),
        Just(json!(OCI_INDEX)),
        Just(json!(DOCKER_MANIFEST_LIST)),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("schemaVersion".to_string()),
        Just("mediaType".to_string()),
        Just("manifests".to_string()),
        Just("config".to_string()),
        Just("layers".to_string()),
        Just("digest".to_string()),
        Just("size".to_string()),
        Just("platform".to_string()),
        Just("annotations".to_string()),
        Just("architecture".to_string()),
        Just("os".to_string()),
        "[a-zA-Z]{0,6}",
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just(OCI_MANIFEST.to_string()),
        Just(format!("{OCI_INDEX}; charset=utf-8")),
        Just(DOCKER_MANIFEST.to_string()),
        Just("application/json".to_string()),
        "\\PC{0,20}",
    ])
}

/// A descriptor as a registry would serve it, and what parsing must keep of it.
fn descriptor() -> impl Strategy<Value = (Value, String, u64, Option<(String, String)>)> {
    (
        "[a-z0-9./+\\-]{0,30}",
        "[0-9a-f]{64}",
        any::<u64>(),
        proptest::option::of(("[a-z0-9]{1,8}", "[a-z]{1,8}")),
    )
        .prop_map(|(media_type, hex, size, platform)| {
            let digest = format!("sha256:{hex}");
            let mut v = json!({"mediaType": media_type, "digest": digest, "size": size});
            if let Some((arch, os)) = &platform {
                v["platform"] = json!({"architecture": arch, "os": os});
            }
            (v, digest, size, platform)
        })
}

proptest! {
    // Generating 64-digit digests is the slow part in debug builds.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn manifest_parse_of_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ct in content_type(),
    ) {
        let _ = Manifest::parse("m", ct.as_deref(), &bytes);
    }

    #[test]
    fn manifest_parse_of_arbitrary_json(value in json_value(), ct in content_type()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Ok(m) = Manifest::parse("m", ct.as_deref(), &bytes) {
            // Whatever is accepted says schemaVersion 2 and has valid digests throughout.
            prop_assert_eq!(value["schemaVersion"].as_u64(), Some(2));
            let descriptors = match &m {
                Manifest::Image(i) => {
                    let mut d = vec![i.config.clone()];
                    d.extend(i.layers.iter().cloned());
                    d
                }
                Manifest::Index(i) => i.manifests.clone(),
            };
            for d in descriptors {
                prop_assert!(d.digest.as_str().starts_with("sha256:"));
                prop_assert_eq!(d.digest.hex().len(), 64);
            }
        }
    }

    #[test]
    fn manifests_keep_their_fields(
        config in descriptor(),
        layers in proptest::collection::vec(descriptor(), 0..8),
        oci in any::<bool>(),
        state_type in any::<bool>(),
    ) {
        let media_type = if oci { OCI_MANIFEST } else { DOCKER_MANIFEST };
        let mut doc = json!({
            "schemaVersion": 2,
            "config": config.0,
            "layers": layers.iter().map(|l| l.0.clone()).collect::<Vec<_>>(),
        });
        // The media type comes from the document or, failing that, from Content-Type.
        let ct = if state_type {
            doc["mediaType"] = json!(media_type);
            None
        } else {
            Some(format!("{media_type}; charset=utf-8"))
        };
        let bytes = serde_json::to_vec(&doc).unwrap();
        let Manifest::Image(m) = Manifest::parse("m", ct.as_deref(), &bytes).unwrap() else {
            return Err(TestCaseError::fail("an image manifest parsed as an index"));
        };
        prop_assert_eq!(m.schema_version, 2);
        prop_assert_eq!(m.config.digest.as_str(), config.1);
        prop_assert_eq!(m.config.size, config.2);
        prop_assert_eq!(m.layers.len(), layers.len());
        for (got, want) in m.layers.iter().zip(&layers) {
            prop_assert_eq!(got.digest.as_str(), &want.1);
            prop_assert_eq!(got.size, want.2);
            prop_assert_eq!(&got.media_type, want.0["mediaType"].as_str().unwrap());
        }
        // Serializing what was parsed and parsing it again changes nothing.
        let again = serde_json::to_vec(&m).unwrap();
        let Manifest::Image(m2) = Manifest::parse("m", ct.as_deref(), &again).unwrap() else {
            return Err(TestCaseError::fail("re-serialized manifest became an index"));
        };
        prop_assert_eq!(m2.config, m.config);
        prop_assert_eq!(m2.layers, m.layers);
    }

    #[test]
    fn indexes_keep_their_fields(
        entries in proptest::collection::vec(descriptor(), 0..8),
        media_type in prop_oneof![Just(Some(OCI_INDEX)), Just(Some(DOCKER_MANIFEST_LIST)), Just(None)],
    ) {
        let mut doc = json!({
            "schemaVersion": 2,
            "manifests": entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        });
        if let Some(t) = media_type {
            doc["mediaType"] = json!(t);
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        // Without a media type, the shape (a `manifests` list) decides.
        let parsed = Manifest::parse("i", Some("application/json"), &bytes).unwrap();
        let Manifest::Index(i) = parsed else {
            return Err(TestCaseError::fail("an index parsed as an image manifest"));
        };
        prop_assert_eq!(i.manifests.len(), entries.len());
        for (got, want) in i.manifests.iter().zip(&entries) {
            prop_assert_eq!(got.digest.as_str(), &want.1);
            prop_assert_eq!(got.size, want.2);
            prop_assert_eq!(
                got.platform.as_ref().map(|p| (p.architecture.clone(), p.os.clone())),
                want.3.clone()
            );
        }
    }

    #[test]
    fn bad_sizes_and_digests_are_refused(
        size in prop_oneof![(i64::MIN..0).prop_map(|s| json!(s)), Just(json!(1.5)), Just(json!("1"))],
        digest in prop_oneof![
            "sha256:[0-9a-f]{0,63}",
            "sha256:[0-9a-f]{65,70}",
            "sha256:[0-9a-f]{0,10}[A-Zg-z][0-9a-f]{0,10}",
            "(sha512|md5):[0-9a-f]{64}",
        ],
        bad_digest in any::<bool>(),
    ) {
        let (size, digest) = if bad_digest { (json!(1), json!(digest)) } else { (size, json!(DIGEST)) };
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"digest": DIGEST, "size": 1},
            "layers": [{"digest": digest, "size": size}],
        });
        let bytes = serde_json::to_vec(&doc).unwrap();
        prop_assert!(Manifest::parse("m", None, &bytes).is_err());
    }
}

// ---------------------------------------------------------------- hosts.toml

/// Mirror URLs, good and bad.
fn host_url() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        (
            prop_oneof![
                Just(""),
                Just("http://"),
                Just("https://"),
                Just("ftp://"),
                Just("://")
            ],
            "[a-z0-9.:\\[\\]\\-]{0,20}",
            "(/[a-z0-9]{0,6}){0,3}/{0,2}",
        )
            .prop_map(|(s, a, p)| format!("{s}{a}{p}")),
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        Just("1".to_string()),
        Just(r#"["pull", "resolve"]"#.to_string()),
        Just(r#"["pull", "push", "delete"]"#.to_string()),
        Just(r#"["a.pem", 3]"#.to_string()),
        Just("{ x = 1 }".to_string()),
        "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
    ]
}

/// A hosts.toml: a server line, then host tables with arbitrary keys and values.
fn hosts_file() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("capabilities"),
        Just("ca"),
        Just("skip_verify"),
        Just("override_path"),
        Just("header"),
        Just("server"),
        Just("client"),
    ];
    let table = (
        host_url(),
        proptest::collection::vec((key, toml_value()), 0..5),
    );
    (
        proptest::option::of(host_url()),
        proptest::collection::vec(table, 0..4),
        proptest::option::of("\\PC{0,40}"),
    )
        .prop_map(|(server, tables, junk)| {
            let mut text = String::new();
            if let Some(s) = server {
                text.push_str(&format!("server = {s:?}\n"));
            }
            for (url, entries) in tables {
                text.push_str(&format!("[host.{url:?}]\n"));
                for (k, v) in entries {
                    text.push_str(&format!("  {k} = {v}\n"));
                }
            }
            if let Some(j) = junk {
                text.push_str(&j);
            }
            text
        })
}

fn check_hosts(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let registry = "registry.example:5000";
    std::fs::create_dir(dir.path().join(registry)).unwrap();
    std::fs::write(dir.path().join(registry).join("hosts.toml"), text).unwrap();
    let Ok(hosts) = hosts_for(Some(dir.path()), registry) else {
        return Ok(());
    };
    for h in hosts {
        prop_assert!(!h.authority.is_empty());
        prop_assert!(!h.authority.contains('/'), "{:?}", h.authority);
        prop_assert!(h.api_root.is_empty() || h.api_root.starts_with('/'));
        prop_assert!(!h.api_root.ends_with('/'), "{:?}", h.api_root);
        let scheme = match h.scheme {
            Scheme::Http => "http://",
            Scheme::Https => "https://",
        };
        let url = h.base_url();
        prop_assert_eq!(url, format!("{scheme}{}{}", h.authority, h.api_root));
        for ca in &h.ca_files {
            prop_assert!(ca.is_absolute());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn hosts_toml_of_arbitrary_text(text in "\\PC{0,200}") {
        check_hosts(&text)?;
    }

    #[test]
    fn hosts_toml_of_hostile_tables(text in hosts_file()) {
        check_hosts(&text)?;
    }
}
