//! `Status`: RuntimeReady and NetworkReady, the handlers and features kubelet can use.

use std::collections::HashMap;

use crate::server::RpcError;

use crate::api::{
    RuntimeCondition, RuntimeFeatures, RuntimeHandler, RuntimeHandlerFeatures, RuntimeStatus,
    StatusRequest, StatusResponse,
};
use crate::daemon::Daemon;

const RUNTIME_READY: &str = "RuntimeReady";
const NETWORK_READY: &str = "NetworkReady";

pub(super) async fn status(d: &Daemon, req: StatusRequest) -> Result<StatusResponse, RpcError> {
    let network = d.network_status();
    let conditions = vec![
        RuntimeCondition {
            r#type: RUNTIME_READY.into(),
            status: true,
            ..Default::default()
        },
        RuntimeCondition {
            r#type: NETWORK_READY.into(),
            status: network.ready,
            reason: network.reason.clone(),
            message: network.message.clone(),
        },
    ];
    // Both executors get the pod's user namespace and the idmapped root from the daemon.
    let userns = d.userns_support.is_ok();
    let mut handlers = vec![handler("", userns)];
    handlers.extend(
        d.config
            .runtime
            .handlers
            .keys()
            .map(|name| handler(name, userns)),
    );
    let mut info = HashMap::new();
    if req.verbose {
        let config = serde_json::json!({
            "root": d.config.root,
            "state": d.config.state,
            "cgroupDriver": format!("{:?}", d.config.cgroups.driver).to_lowercase(),
            "cniConfDir": d.config.cni.conf_dir,
            "defaultRuntimeHandler": d.config.runtime.default_handler,
        });
        info.insert("config".to_string(), config.to_string());
    }
    Ok(StatusResponse {
        status: Some(RuntimeStatus { conditions }),
        info,
        runtime_handlers: handlers,
        features: Some(RuntimeFeatures {
            supplemental_groups_policy: true,
            user_namespaces_host_network: false,
        }),
    })
}

fn handler(name: &str, user_namespaces: bool) -> RuntimeHandler {
    RuntimeHandler {
        name: name.to_string(),
        features: Some(RuntimeHandlerFeatures {
            recursive_read_only_mounts: true,
            user_namespaces,
        }),
    }
}
