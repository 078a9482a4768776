//! ADD, DEL and CHECK of one network (a plugin list) for one container, as the spec's
//! "network configuration list" operations define them.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::invoke::{self, Call, PluginDirs, Verb};
use crate::netconf::NetworkList;

/// One container's side of a call: the same for every plugin of the list.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS`, empty when gone (DEL).
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_ARGS`, already joined.
    pub cni_args: &'a str,
    /// Capability arguments, filtered per plugin into `runtimeConfig`.
    pub capability_args: &'a Map<String, Value>,
}

impl<'a> Attachment<'a> {
    fn call(&self, verb: Verb, list: &'a NetworkList) -> Call<'a> {
        Call {
            verb,
            container_id: self.container_id,
            netns: self.netns,
            ifname: self.ifname,
            args: self.cni_args,
            network: &list.name,
        }
    }
}

/// Runs ADD through the list in order, each plugin getting the previous one's result;
/// returns the last result.
pub async fn add(dirs: &PluginDirs, list: &NetworkList, att: &Attachment<'_>) -> Result<Value> {
    let call = att.call(Verb::Add, list);
    let mut prev: Option<Value> = None;
    for plugin in &list.plugins {
        let stdin = list.plugin_stdin(plugin, prev.as_ref(), att.capability_args);
        let out = invoke::run(dirs, &plugin.kind, &call, &stdin).await?;
        let bad = |reason: String| Error::BadResult {
            network: list.name.clone(),
            plugin: plugin.kind.clone(),
            reason,
        };
        let result: Value = serde_json::from_slice(&out).map_err(|e| bad(e.to_string()))?;
        if !result.is_object() {
            return Err(bad(format!("{result} is not a JSON object")));
        }
        prev = Some(result);
    }
    prev.ok_or_else(|| Error::BadResult {
        network: list.name.clone(),
        plugin: String::new(),
        reason: "the list has no plugins".into(),
    })
}

/// Runs DEL through the list in reverse. Every plugin gets its DEL even when an earlier one
/// failed (so one stuck plugin does not keep the others' resources, an IP above all); the
/// first error is returned. `cached` is the ADD result, passed on for spec 0.4.0 and later.
pub async fn del(
    dirs: &PluginDirs,
    list: &NetworkList,
    att: &Attachment<'_>,
    cached: Option<&Value>,
) -> Result<()> {
    let call = att.call(Verb::Del, list);
    let prev = cached.filter(|_| list.version.del_gets_prev_result());
    let mut first_error = None;
    for plugin in list.plugins.iter().rev() {
        let stdin = list.plugin_stdin(plugin, prev, att.capability_args);
        if let Err(e) = invoke::run(dirs, &plugin.kind, &call, &stdin).await {
            tracing::warn!(network = %list.name, plugin = %plugin.kind,
                container = att.container_id, error = %e, "CNI DEL failed");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Runs CHECK through the list in order with the cached ADD result; stops at the first
/// failure. The caller skips lists older than 0.4.0 and those with `disableCheck`.
pub async fn check(
    dirs: &PluginDirs,
    list: &NetworkList,
    att: &Attachment<'_>,
    cached: &Value,
) -> Result<()> {
    let call = att.call(Verb::Check, list);
    for plugin in &list.plugins {
        let stdin = list.plugin_stdin(plugin, Some(cached), att.capability_args);
        invoke::run(dirs, &plugin.kind, &call, &stdin).await?;
    }
    Ok(())
}
