//! [`Store`]: the one owner of the daemon's pods and containers. Every change to a record, to
//! the live maps or to the reserved names goes through it, so they cannot drift apart.
//!
//! Crash order: a record that says what is about to be made is durable *before* the first
//! namespace, mount, cgroup, process or lease exists ([`Store::record_pod`] with
//! `creating: true`); it becomes live ([`Store::add_pod`]) only once everything is made. A
//! record still `creating` at start was cut short by a crash, and recovery undoes what it
//! names (`src/recovery.rs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use redb::Database;

use super::db::{Op, RecordStore, encode};
use super::writer::Writer;
use super::{Container, ContainerRecord, NameRegistry, Pod, PodRecord, StoreError};

/// Pods, containers and their names, in memory and on disk.
pub struct Store {
    records: RecordStore,
    writer: Writer,
    pods: RwLock<HashMap<String, Arc<Pod>>>,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    names: NameRegistry,
}

impl Store {
    /// Opens the record tables in `db` and starts the record writer.
    pub fn open(db: Arc<Database>) -> Result<Store, StoreError> {
        let records = RecordStore::new(db)?;
        Ok(Store {
            writer: Writer::start(records.clone())?,
            records,
            pods: RwLock::new(HashMap::new()),
            containers: RwLock::new(HashMap::new()),
            names: NameRegistry::default(),
        })
    }

    /// Every stored record, for recovery at start.
    pub fn load(&self) -> Result<(Vec<PodRecord>, Vec<ContainerRecord>), StoreError> {
        Ok((self.records.pods()?, self.records.containers()?))
    }

    /// A live pod by id.
    pub fn pod(&self, id: &str) -> Option<Arc<Pod>> {
        read(&self.pods).get(id).cloned()
    }

    /// A live container by id.
    pub fn container(&self, id: &str) -> Option<Arc<Container>> {
        read(&self.containers).get(id).cloned()
    }

    /// Every live pod.
    pub fn all_pods(&self) -> Vec<Arc<Pod>> {
        read(&self.pods).values().cloned().collect()
    }

    /// Every live container.
    pub fn all_containers(&self) -> Vec<Arc<Container>> {
        read(&self.containers).values().cloned().collect()
    }

    /// Reserves a pod's or container's full name for `id`; the error names the holder.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), String> {
        self.names.reserve(name, id)
    }

    /// Frees a name `id` holds.
    pub fn release_name(&self, name: &str, id: &str) {
        self.names.release(name, id);
    }

    /// Makes a pod record durable without listing it: the intent before a pod is made, and
    /// each step that a crash must be able to undo (the network about to be attached).
    pub async fn record_pod(&self, record: &PodRecord) -> Result<(), StoreError> {
        let bytes = encode(&record.id, record)?;
        self.writer
            .enqueue(Op::PutPod(record.id.clone(), bytes))
            .durable()
            .await
    }

    /// Makes a finished pod durable, then live.
    pub async fn add_pod(&self, record: PodRecord) -> Result<Arc<Pod>, StoreError> {
        self.record_pod(&record).await?;
        let pod = Arc::new(Pod::from_record(record)?);
        write(&self.pods).insert(pod.id.clone(), pod.clone());
        Ok(pod)
    }

    /// Changes a live pod's record and waits until the change is durable. Changes are queued
    /// under the record's lock, so the disk sees them in the order they were made.
    pub async fn update_pod(
        &self,
        pod: &Pod,
        change: impl FnOnce(&mut PodRecord),
    ) -> Result<PodRecord, StoreError> {
        let (record, pending) = {
            let mut record = pod.record.write().unwrap_or_else(|p| p.into_inner());
            change(&mut record);
            let bytes = encode(&record.id, &*record)?;
            let pending = self.writer.enqueue(Op::PutPod(record.id.clone(), bytes));
            (record.clone(), pending)
        };
        pending.durable().await?;
        Ok(record)
    }

    /// Forgets a pod: durably, then from the live map, then its name.
    pub async fn remove_pod(&self, pod: &Pod) -> Result<(), StoreError> {
        self.forget_pod(&pod.id).await?;
        write(&self.pods).remove(&pod.id);
        self.names.release(&Pod::full_name(&pod.config), &pod.id);
        Ok(())
    }

    /// Deletes a pod record that never became live (a RunPodSandbox that was undone).
    pub async fn forget_pod(&self, id: &str) -> Result<(), StoreError> {
        self.writer
            .enqueue(Op::DeletePod(id.to_string()))
            .durable()
            .await
    }

    /// Makes a container record durable without listing it (the intent of CreateContainer).
    pub async fn record_container(&self, record: &ContainerRecord) -> Result<(), StoreError> {
        let bytes = encode(&record.id, record)?;
        self.writer
            .enqueue(Op::PutContainer(record.id.clone(), bytes))
            .durable()
            .await
    }

    /// Makes a created container durable, then live.
    pub async fn add_container(
        &self,
        record: ContainerRecord,
    ) -> Result<Arc<Container>, StoreError> {
        self.record_container(&record).await?;
        let container = Arc::new(Container::from_record(record)?);
        write(&self.containers).insert(container.id.clone(), container.clone());
        Ok(container)
    }

    /// Changes a live container's record and waits until the change is durable.
    pub async fn update_container(
        &self,
        container: &Container,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord, StoreError> {
        let (record, pending) = {
            let mut record = container.record.write().unwrap_or_else(|p| p.into_inner());
            change(&mut record);
            let bytes = encode(&record.id, &*record)?;
            let pending = self
                .writer
                .enqueue(Op::PutContainer(record.id.clone(), bytes));
            (record.clone(), pending)
        };
        pending.durable().await?;
        Ok(record)
    }

    /// Forgets a container: durably, then from the live map, then its name.
    pub async fn remove_container(&self, container: &Container) -> Result<(), StoreError> {
        self.forget_container(&container.id).await?;
        write(&self.containers).remove(&container.id);
        if let Some(pod) = self.pod(&container.pod_id) {
            let name = Container::full_name(&container.config, &pod.config);
            self.names.release(&name, &container.id);
        }
        Ok(())
    }

    /// Deletes a container record that never became live.
    pub async fn forget_container(&self, id: &str) -> Result<(), StoreError> {
        self.writer
            .enqueue(Op::DeleteContainer(id.to_string()))
            .durable()
            .await
    }

    /// Lists a pod found at start again, with its name.
    pub fn restore_pod(&self, pod: Arc<Pod>) {
        let _ = self.names.reserve(&Pod::full_name(&pod.config), &pod.id);
        write(&self.pods).insert(pod.id.clone(), pod);
    }

    /// Lists a container found at start again, with its name.
    pub fn restore_container(&self, container: Arc<Container>) {
        if let Some(pod) = self.pod(&container.pod_id) {
            let name = Container::full_name(&container.config, &pod.config);
            let _ = self.names.reserve(&name, &container.id);
        }
        write(&self.containers).insert(container.id.clone(), container);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ContainerState, PodState};

    fn store(dir: &std::path::Path) -> Store {
        let db = Database::create(dir.join("t.db")).unwrap();
        Store::open(Arc::new(db)).unwrap()
    }

    fn pod_record(id: &str) -> PodRecord {
        PodRecord {
            id: id.into(),
            state: PodState::Ready,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn intents_are_durable_but_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let mut r = pod_record("p1");
        r.creating = true;
        s.record_pod(&r).await.unwrap();
        assert!(s.pod("p1").is_none());
        let (pods, _) = s.load().unwrap();
        assert!(pods[0].creating);
        s.forget_pod("p1").await.unwrap();
        assert!(s.load().unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn concurrent_updates_reach_the_disk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        let pod = s.add_pod(pod_record("p1")).await.unwrap();
        let c = ContainerRecord {
            id: "c1".into(),
            pod_id: "p1".into(),
            config: prost::Message::encode_to_vec(&crate::api::ContainerConfig::default()),
            ..Default::default()
        };
        let container = s.add_container(c).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (s, container) = (s.clone(), container.clone());
            tasks.push(tokio::spawn(async move {
                s.update_container(&container, |r| r.pid = i).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let last = container.read(|r| r.pid);
        let (_, containers) = s.load().unwrap();
        assert_eq!(containers[0].pid, last, "the disk has the last change");
        s.update_container(&container, |r| r.state = ContainerState::Exited)
            .await
            .unwrap();
        s.remove_container(&container).await.unwrap();
        s.remove_pod(&pod).await.unwrap();
        assert_eq!(s.load().unwrap().0.len() + s.load().unwrap().1.len(), 0);
        assert!(s.all_pods().is_empty() && s.all_containers().is_empty());
    }
}
