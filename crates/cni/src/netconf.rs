//! Network configurations: parsing `.conflist` / `.conf` files into one plugin list, and
//! building the JSON each plugin reads on stdin.

use std::path::Path;

use serde_json::{Map, Value};

use crate::version::CniVersion;

/// The version a configuration that declares none is treated as; CNI's own skeleton does the
/// same for plugins.
const IMPLICIT_VERSION: &str = "0.1.0";

/// One network: a named, versioned chain of plugins (a single `.conf` becomes a list of one).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    /// The network name (`name`).
    pub name: String,
    /// The declared `cniVersion`, exactly as written.
    pub version_str: String,
    /// The parsed version.
    pub version: CniVersion,
    /// `disableCheck`: the admin asked us never to run CHECK.
    pub disable_check: bool,
    /// The plugins, in ADD order.
    pub plugins: Vec<PluginConf>,
    /// The list in list form; what the result cache keeps and re-parses.
    pub source: Value,
}

/// One plugin of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConf {
    /// `type`: the binary to run.
    pub kind: String,
    /// The capabilities it declares with `true` (`portMappings`, `bandwidth`, ...).
    pub capabilities: Vec<String>,
    /// Its configuration object as written.
    raw: Map<String, Value>,
}

impl NetworkList {
    /// Parses a configuration file's bytes. `.conflist` files are lists; `.conf` and `.json`
    /// files are single plugins, wrapped into a list (a `.json` holding a list is accepted).
    pub fn from_file(path: &Path, bytes: &[u8]) -> Result<NetworkList, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let is_list_file = path.extension().is_some_and(|e| e == "conflist");
        let looks_like_list = value.get("plugins").is_some() && value.get("type").is_none();
        if is_list_file || looks_like_list {
            Self::from_list_value(value)
        } else {
            Self::from_conf_value(value)
        }
    }

    /// Parses a configuration list (`{"name", "cniVersion", "plugins": [...]}`).
    pub fn from_list_value(value: Value) -> Result<NetworkList, String> {
        let obj = value
            .as_object()
            .ok_or("the configuration is not a JSON object")?;
        let name = network_name(obj)?;
        let version_str = version_string(obj)?;
        let version = parse_version(&version_str)?;
        let disable_check = disable_check(obj)?;
        let plugins = match obj.get("plugins") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, p)| PluginConf::parse(p).map_err(|e| format!("plugins[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::Array(_)) => return Err("\"plugins\" is empty".into()),
            Some(_) => return Err("\"plugins\" is not an array".into()),
            None => return Err("no \"plugins\" in a configuration list".into()),
        };
        Ok(NetworkList {
            name,
            version_str,
            version,
            disable_check,
            plugins,
            source: value,
        })
    }

    /// Parses a single plugin configuration and wraps it into a list of one.
    pub fn from_conf_value(value: Value) -> Result<NetworkList, String> {
        let obj = value
            .as_object()
            .ok_or("the configuration is not a JSON object")?;
        let name = network_name(obj)?;
        let version_str = version_string(obj)?;
        let mut list = Map::new();
        list.insert("cniVersion".into(), Value::String(version_str));
        list.insert("name".into(), Value::String(name));
        list.insert("plugins".into(), Value::Array(vec![value]));
        Self::from_list_value(Value::Object(list))
    }

    /// The JSON a plugin reads on stdin: its own configuration with the list's `name` and
    /// `cniVersion`, the previous result, and those `runtimeConfig` entries it declared a
    /// capability for (as libcni does: never a capability the plugin did not ask for).
    pub fn plugin_stdin(
        &self,
        plugin: &PluginConf,
        prev_result: Option<&Value>,
        capability_args: &Map<String, Value>,
    ) -> Vec<u8> {
        let mut conf = plugin.raw.clone();
        conf.insert("name".into(), Value::String(self.name.clone()));
        conf.insert("cniVersion".into(), Value::String(self.version_str.clone()));
        if let Some(prev) = prev_result {
            conf.insert("prevResult".into(), prev.clone());
        }
        let runtime: Map<String, Value> = plugin
            .capabilities
            .iter()
            .filter_map(|cap| Some((cap.clone(), capability_args.get(cap)?.clone())))
            .collect();
        if !runtime.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime));
        }
        // Serialising a map of JSON values cannot fail; fall back to an empty object anyway.
        serde_json::to_vec(&conf).unwrap_or_else(|_| b"{}".to_vec())
    }
}

impl PluginConf {
    /// The IPAM plugin this plugin delegates to (`ipam.type`), if any.
    pub fn ipam_kind(&self) -> Option<&str> {
        self.raw.get("ipam")?.get("type")?.as_str()
    }

    fn parse(value: &Value) -> Result<PluginConf, String> {
        let raw = value.as_object().ok_or("not a JSON object")?.clone();
        let kind = match raw.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err("\"type\" is not a string".into()),
            None => return Err("no \"type\"".into()),
        };
        if kind.is_empty() || kind.contains('/') || kind == "." || kind == ".." {
            return Err(format!("\"type\" {kind:?} is not a plugin binary name"));
        }
        let capabilities = match raw.get("capabilities") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(caps)) => caps
                .iter()
                .filter(|(_, on)| on.as_bool() == Some(true))
                .map(|(cap, _)| cap.clone())
                .collect(),
            Some(_) => return Err("\"capabilities\" is not an object".into()),
        };
        Ok(PluginConf {
            kind,
            capabilities,
            raw,
        })
    }
}

/// Network names become file names in the result cache, so they must be what the spec
/// allows: an alphanumeric, then alphanumerics, `_`, `.` or `-`.
fn network_name(obj: &Map<String, Value>) -> Result<String, String> {
    let name = match obj.get("name") {
        Some(Value::String(n)) => n,
        Some(_) => return Err("\"name\" is not a string".into()),
        None => return Err("no network \"name\"".into()),
    };
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(format!(
            "network name {name:?} must start with a letter or digit and hold only letters, \
             digits, '_', '.' and '-'"
        ));
    }
    Ok(name.clone())
}

fn version_string(obj: &Map<String, Value>) -> Result<String, String> {
    match obj.get("cniVersion") {
        Some(Value::String(v)) => Ok(v.clone()),
        Some(_) => Err("\"cniVersion\" is not a string".into()),
        None => Ok(IMPLICIT_VERSION.into()),
    }
}

fn parse_version(v: &str) -> Result<CniVersion, String> {
    CniVersion::parse(v).ok_or_else(|| {
        format!(
            "unsupported cniVersion {v:?} (supported: {})",
            CniVersion::supported().join(", ")
        )
    })
}

/// libcni accepts `disableCheck` as a boolean or as the strings "true"/"false".
fn disable_check(obj: &Map<String, Value>) -> Result<bool, String> {
    match obj.get("disableCheck") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(format!("\"disableCheck\" {other} is not a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIST: &str = r#"{
        "cniVersion": "0.4.0", "name": "net1",
        "plugins": [
            {"type": "bridge", "bridge": "br0", "ipam": {"type": "host-local"}},
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    }"#;

    fn stdin_json(list: &NetworkList, i: usize, prev: Option<&Value>, caps: &Value) -> Value {
        let caps = caps.as_object().unwrap();
        serde_json::from_slice(&list.plugin_stdin(&list.plugins[i], prev, caps)).unwrap()
    }

    #[test]
    fn parses_a_conflist() {
        let list = NetworkList::from_file(Path::new("10-a.conflist"), LIST.as_bytes()).unwrap();
        assert_eq!(list.name, "net1");
        assert_eq!(list.version_str, "0.4.0");
        assert!(!list.disable_check);
        let kinds: Vec<_> = list.plugins.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds, ["bridge", "portmap", "bandwidth"]);
        assert_eq!(list.plugins[1].capabilities, ["portMappings"]);
        assert_eq!(list.plugins[0].ipam_kind(), Some("host-local"));
        assert_eq!(list.plugins[1].ipam_kind(), None);
    }

    #[test]
    fn wraps_a_single_conf() {
        let conf = r#"{"cniVersion":"0.3.1","name":"single","type":"bridge","bridge":"b"}"#;
        let list = NetworkList::from_file(Path::new("10-a.conf"), conf.as_bytes()).unwrap();
        assert_eq!(list.name, "single");
        assert_eq!(list.plugins.len(), 1);
        assert_eq!(list.source["plugins"][0]["bridge"], "b");
        // Re-parsing the cached list form gives the same network.
        let again = NetworkList::from_list_value(list.source.clone()).unwrap();
        assert_eq!(again, list);
    }

    #[test]
    fn accepts_a_list_in_a_json_file_and_an_implicit_version() {
        let list = NetworkList::from_file(Path::new("a.json"), LIST.as_bytes()).unwrap();
        assert_eq!(list.plugins.len(), 3);
        let old = r#"{"name":"old","type":"bridge"}"#;
        let list = NetworkList::from_file(Path::new("a.conf"), old.as_bytes()).unwrap();
        assert_eq!(list.version_str, "0.1.0");
    }

    #[test]
    fn rejects_broken_configs_with_a_reason() {
        let cases = [
            ("{\"name\": ", "EOF"),
            (r#"{"cniVersion":"1.0.0","name":"x","plugins":[]}"#, "empty"),
            (r#"{"cniVersion":"1.0.0","name":"x"}"#, "no \"plugins\""),
            (
                r#"{"cniVersion":"9.9.9","name":"x","plugins":[{"type":"a"}]}"#,
                "9.9.9",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"../x","plugins":[{"type":"a"}]}"#,
                "../x",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"bridge":"a"}]}"#,
                "plugins[0]",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../sh"}]}"#,
                "../sh",
            ),
        ];
        for (text, needle) in cases {
            let err = NetworkList::from_file(Path::new("a.conflist"), text.as_bytes()).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let err = NetworkList::from_file(Path::new("a.conf"), br#"{"name":"x"}"#).unwrap_err();
        assert!(err.contains("no \"type\""), "{err}");
    }

    #[test]
    fn disable_check_accepts_bool_and_string() {
        for (v, want) in [
            (json!(true), true),
            (json!("true"), true),
            (json!("false"), false),
        ] {
            let conf =
                json!({"cniVersion":"1.0.0","name":"x","disableCheck":v,"plugins":[{"type":"a"}]});
            assert_eq!(
                NetworkList::from_list_value(conf).unwrap().disable_check,
                want
            );
        }
    }

    #[test]
    fn plugin_stdin_injects_name_version_prev_result_and_declared_capabilities_only() {
        let list = NetworkList::from_file(Path::new("a.conflist"), LIST.as_bytes()).unwrap();
        let caps = json!({
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1000}
        });
        let prev = json!({"cniVersion": "0.4.0", "ips": []});

        let bridge = stdin_json(&list, 0, None, &caps);
        assert_eq!(bridge["name"], "net1");
        assert_eq!(bridge["cniVersion"], "0.4.0");
        assert_eq!(bridge["bridge"], "br0");
        assert!(bridge.get("prevResult").is_none());
        assert!(
            bridge.get("runtimeConfig").is_none(),
            "bridge declared no capability"
        );

        let portmap = stdin_json(&list, 1, Some(&prev), &caps);
        assert_eq!(portmap["prevResult"], prev);
        assert_eq!(
            portmap["runtimeConfig"],
            json!({"portMappings": caps["portMappings"]})
        );

        let bandwidth = stdin_json(&list, 2, Some(&prev), &json!({}));
        assert!(
            bandwidth.get("runtimeConfig").is_none(),
            "no value for its capability"
        );
    }
}
