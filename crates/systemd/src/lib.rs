//! systemd's manager over D-Bus, for Longshore's `systemd` cgroup driver.
//!
//! With `[cgroups] driver = "systemd"` on a host that systemd booted, every container's cgroup is a
//! transient scope unit that systemd knows (`longshore-<id>.scope`, `Delegate=yes`, its limits as
//! unit properties), so `systemctl` lists and accounts it and a `daemon-reload` keeps its limits;
//! a pod cgroup that Longshore makes itself is a transient slice. This crate is the D-Bus part:
//! [`Systemd`] starts, changes and stops units and waits for their jobs (`JobRemoved`), the way
//! runc's systemd driver (go-systemd) does; [`properties`] maps resources to unit properties.

pub mod properties;

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use longshore_error::{Classify, Kind};
use tokio::sync::Mutex;
use zbus::zvariant::{OwnedObjectPath, Value as ZValue};
use zbus::{Connection, MatchRule, MessageStream};

pub use properties::{Property, Value};

const DESTINATION: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// systemd's own socket, for root, when there is no system bus (runc falls back to it too).
const PRIVATE_SOCKET: &str = "/run/systemd/private";
/// The system bus's well-known socket.
const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
/// How long a unit's job may take (runc waits 30 s too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure talking to systemd. Each names the unit or step it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither the system bus nor systemd's private socket could be reached.
    #[error(
        "cannot reach systemd over D-Bus ({SYSTEM_BUS_SOCKET}, then {PRIVATE_SOCKET}): {source}"
    )]
    Connect {
        /// The last failure.
        source: zbus::Error,
    },
    /// systemd refused a call (its error name and message are kept).
    #[error("systemd {method} {unit}: {source}")]
    Call {
        /// The manager method.
        method: &'static str,
        /// The unit.
        unit: String,
        /// systemd's answer.
        source: zbus::Error,
    },
    /// The unit's job finished with another result than `done`.
    #[error("systemd job for {unit} finished with result {result:?}")]
    JobFailed {
        /// The unit.
        unit: String,
        /// systemd's job result (`failed`, `timeout`, `dependency`, ...).
        result: String,
    },
    /// The job did not finish in time.
    #[error("systemd did not finish the job for {unit} within {JOB_TIMEOUT:?}")]
    Timeout {
        /// The unit.
        unit: String,
    },
}

impl Error {
    /// systemd's D-Bus error name, when systemd answered with one.
    pub fn dbus_name(&self) -> Option<&str> {
        match self {
            Error::Call {
                source: zbus::Error::MethodError(name, _, _),
                ..
            } => Some(name.as_str()),
            _ => None,
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Connect { .. } | Error::Timeout { .. } => Kind::Unavailable,
            Error::JobFailed { .. } => Kind::FailedPrecondition,
            Error::Call { .. } => match self.dbus_name() {
                Some("org.freedesktop.systemd1.NoSuchUnit") => Kind::NotFound,
                Some("org.freedesktop.systemd1.UnitExists") => Kind::AlreadyExists,
                Some("org.freedesktop.DBus.Error.InvalidArgs") => Kind::InvalidArgument,
                Some("org.freedesktop.DBus.Error.AccessDenied") => Kind::PermissionDenied,
                Some(_) => Kind::FailedPrecondition,
                None => Kind::Unavailable,
            },
        }
    }
}

/// Whether systemd booted this host (`sd_booted(3)`: `/run/systemd/system` exists).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// A lazily made, shared connection to systemd's manager; made again after a failure (systemd
/// or the bus restarted).
#[derive(Default)]
pub struct Systemd {
    conn: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Systemd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Systemd")
    }
}

impl Systemd {
    /// A client that connects on first use.
    pub fn new() -> Systemd {
        Systemd::default()
    }

    /// Connects now (to say at start-up whether systemd can be reached).
    pub async fn check(&self) -> Result<String, Error> {
        let conn = self.connection().await?;
        let version = zbus::Proxy::new(&conn, DESTINATION, PATH, MANAGER)
            .await
            .map_err(|source| Error::Connect { source })?
            .get_property::<String>("Version")
            .await
            .map_err(|source| Error::Connect { source })?;
        Ok(version)
    }

    async fn connection(&self) -> Result<Connection, Error> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let conn = connect().await?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets a connection that failed, so the next call makes a new one.
    async fn reset(&self) {
        *self.conn.lock().await = None;
    }

    /// Starts transient unit `name` with `props` and waits until systemd has finished its job.
    pub async fn start_transient_unit(&self, name: &str, props: &[Property]) -> Result<(), Error> {
        let body = (
            name,
            "replace",
            dbus_props(props),
            Vec::<(&str, Vec<(&str, ZValue<'_>)>)>::new(),
        );
        self.job("StartTransientUnit", name, &body).await
    }

    /// Stops unit `name`, waits for the job, and clears a failed state so that nothing stays
    /// in `systemctl list-units --all`. A unit that is not there is fine.
    pub async fn stop_unit(&self, name: &str) -> Result<(), Error> {
        match self.job("StopUnit", name, &(name, "replace")).await {
            Ok(()) => {}
            Err(e) if e.kind() == Kind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        match self.call("ResetFailedUnit", name, &(name,)).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Kind::NotFound || e.kind() == Kind::FailedPrecondition => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets `props` on a live unit (not persisted across a reboot: `runtime`).
    pub async fn set_unit_properties(&self, name: &str, props: &[Property]) -> Result<(), Error> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", name, &(name, true, dbus_props(props)))
            .await
            .map(|_| ())
    }

    /// Whether systemd has a unit by this name loaded (`GetUnit`).
    pub async fn has_unit(&self, name: &str) -> Result<bool, Error> {
        match self.call("GetUnit", name, &(name,)).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == Kind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn call<B>(
        &self,
        method: &'static str,
        unit: &str,
        body: &B,
    ) -> Result<zbus::Message, Error>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let conn = self.connection().await?;
        let reply = conn
            .call_method(Some(DESTINATION), PATH, Some(MANAGER), method, body)
            .await;
        match reply {
            Ok(m) => Ok(m),
            Err(source) => {
                if !matches!(source, zbus::Error::MethodError(..)) {
                    self.reset().await;
                }
                Err(Error::Call {
                    method,
                    unit: unit.to_string(),
                    source,
                })
            }
        }
    }

    /// Calls a manager method that answers with a job, and waits for the job's `JobRemoved`.
    async fn job<B>(&self, method: &'static str, unit: &str, body: &B) -> Result<(), Error>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let conn = self.connection().await?;
        // Listen before calling: the job may finish before the reply is read.
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(MANAGER)
            .and_then(|b| b.member("JobRemoved"))
            .and_then(|b| b.path(PATH))
            .map(|b| b.build())
            .map_err(|source| Error::Call {
                method,
                unit: unit.to_string(),
                source,
            })?;
        let mut removed = MessageStream::for_match_rule(rule, &conn, None)
            .await
            .map_err(|source| Error::Call {
                method,
                unit: unit.to_string(),
                source,
            })?;
        let reply = self.call(method, unit, body).await?;
        let job: OwnedObjectPath = reply.body().deserialize().map_err(|source| Error::Call {
            method,
            unit: unit.to_string(),
            source,
        })?;
        let wait = async {
            while let Some(msg) = removed.next().await {
                let Ok(msg) = msg else { continue };
                let Ok((_, path, _, result)) = msg
                    .body()
                    .deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == job {
                    return Some(result);
                }
            }
            None
        };
        match tokio::time::timeout(JOB_TIMEOUT, wait).await {
            Ok(Some(result)) if result == "done" => Ok(()),
            Ok(Some(result)) => Err(Error::JobFailed {
                unit: unit.to_string(),
                result,
            }),
            Ok(None) => {
                self.reset().await;
                Err(Error::Timeout {
                    unit: unit.to_string(),
                })
            }
            Err(_) => Err(Error::Timeout {
                unit: unit.to_string(),
            }),
        }
    }
}

/// The system bus, else systemd's private socket; then `Subscribe`, without which systemd sends
/// no job signals.
async fn connect() -> Result<Connection, Error> {
    let conn = match zbus::connection::Builder::system() {
        Ok(b)
            if Path::new(SYSTEM_BUS_SOCKET).exists()
                || std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some() =>
        {
            b.build().await
        }
        _ => Err(zbus::Error::Address("no system bus".into())),
    };
    let conn = match conn {
        Ok(c) => c,
        Err(bus_error) => {
            tracing::debug!(error = %bus_error, "no system bus; trying systemd's private socket");
            let stream = tokio::net::UnixStream::connect(PRIVATE_SOCKET)
                .await
                .map_err(|e| Error::Connect {
                    source: zbus::Error::InputOutput(std::sync::Arc::new(e)),
                })?;
            zbus::connection::Builder::unix_stream(stream)
                .p2p()
                .build()
                .await
                .map_err(|source| Error::Connect { source })?
        }
    };
    conn.call_method(Some(DESTINATION), PATH, Some(MANAGER), "Subscribe", &())
        .await
        .map_err(|source| Error::Connect { source })?;
    Ok(conn)
}

fn dbus_props(props: &[Property]) -> Vec<(&'static str, ZValue<'static>)> {
    props
        .iter()
        .map(|p| {
            let v = match &p.value {
                Value::Bool(b) => ZValue::from(*b),
                Value::U64(n) => ZValue::from(*n),
                Value::Str(s) => ZValue::from(s.clone()),
                Value::U32s(v) => ZValue::from(v.clone()),
                Value::Bytes(v) => ZValue::from(v.clone()),
            };
            (p.name, v)
        })
        .collect()
}
