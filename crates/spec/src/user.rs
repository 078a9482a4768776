//! The user the container process runs as: `run_as_user` / `run_as_username` / `run_as_group`
//! from the security context, else the image's `USER`, resolved against the image's
//! `/etc/passwd` and `/etc/group` (read safely, see [`super::rootfs`]). The rules are
//! containerd's (`WithUser`, `WithAdditionalGIDs`, `WithSupplementalGroups`).

use std::cell::OnceCell;
use std::collections::BTreeSet;

use crate::api::{LinuxContainerSecurityContext, SupplementalGroupsPolicy};

use super::SpecError;
use super::rootfs::Rootfs;

/// Longest `/etc/passwd` or `/etc/group` read from an image.
const USER_FILE_LIMIT: u64 = 4 << 20;
const ETC_PASSWD: &str = "/etc/passwd";
const ETC_GROUP: &str = "/etc/group";
/// runc refuses ids above `i32::MAX`; containerd follows it and so do we.
const MAX_ID: i64 = i32::MAX as i64;

/// The identity of the container's first process, as `ContainerStatus.user` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// Primary uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary groups, sorted, always including `gid` (containerd reports it this way).
    pub additional_gids: Vec<u32>,
}

/// Where the user string came from, so an error names the right field.
struct UserSpec {
    text: String,
    field: &'static str,
    /// containerd resolves image groups for this string: the user part only.
    group_lookup: String,
}

/// Resolves the process user for a container.
pub(crate) fn resolve(
    sc: Option<&LinuxContainerSecurityContext>,
    image_user: &str,
    rootfs: &Rootfs,
) -> Result<ResolvedUser, SpecError> {
    let spec = user_spec(sc, image_user)?;
    let files = UserFiles {
        rootfs,
        passwd: OnceCell::new(),
        groups: OnceCell::new(),
    };
    let (uid, gid) = primary_ids(&spec, &files)?;
    let mut gids = BTreeSet::from([gid]);
    let strict =
        sc.is_some_and(|s| s.supplemental_groups_policy == SupplementalGroupsPolicy::Strict as i32);
    if !strict {
        gids.extend(member_groups(&spec.group_lookup, &files)?);
    }
    for (i, g) in sc
        .map(|s| s.supplemental_groups.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        gids.insert(id(
            *g,
            &format!("security_context.supplemental_groups[{i}]"),
        )?);
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: gids.into_iter().collect(),
    })
}

/// containerd's `GenerateUserString` and its image fallback.
fn user_spec(
    sc: Option<&LinuxContainerSecurityContext>,
    image_user: &str,
) -> Result<UserSpec, SpecError> {
    let username = sc.map(|s| s.run_as_username.as_str()).unwrap_or_default();
    let uid = sc.and_then(|s| s.run_as_user.as_ref()).map(|v| v.value);
    let gid = sc.and_then(|s| s.run_as_group.as_ref()).map(|v| v.value);
    if let Some(uid) = uid {
        id(uid, "security_context.run_as_user")?;
    }
    if let Some(gid) = gid {
        id(gid, "security_context.run_as_group")?;
    }
    let (user, field) = match (username, uid) {
        ("", None) => {
            if gid.is_some() {
                return Err(SpecError::invalid(
                    "security_context.run_as_group",
                    "run_as_group is set without run_as_user or run_as_username",
                ));
            }
            let image_user = if image_user.is_empty() {
                "0"
            } else {
                image_user
            };
            let user_part = image_user.split(':').next().unwrap_or_default().to_string();
            return Ok(UserSpec {
                text: image_user.to_string(),
                field: "image.user",
                group_lookup: user_part,
            });
        }
        ("", Some(uid)) => (uid.to_string(), "security_context.run_as_user"),
        (name, _) => (name.to_string(), "security_context.run_as_username"),
    };
    let text = match gid {
        Some(gid) => format!("{user}:{gid}"),
        None => user.clone(),
    };
    Ok(UserSpec {
        text,
        field,
        group_lookup: user,
    })
}

/// containerd's `WithUser`: `uid`, `name`, `uid:gid`, `name:group` and the mixes.
fn primary_ids(spec: &UserSpec, files: &UserFiles<'_>) -> Result<(u32, u32), SpecError> {
    let parts: Vec<&str> = spec.text.split(':').collect();
    match parts.as_slice() {
        [user] => match numeric(user, spec)? {
            // A uid missing from /etc/passwd (or no /etc/passwd at all) runs with gid 0.
            Some(uid) => Ok((
                uid,
                files
                    .passwd()?
                    .iter()
                    .find(|p| p.uid == uid)
                    .map_or(0, |p| p.gid),
            )),
            None => {
                let entry = files.user_named(user, spec)?;
                Ok((entry.uid, entry.gid))
            }
        },
        [user, group] => {
            let uid = match numeric(user, spec)? {
                Some(uid) => uid,
                None => files.user_named(user, spec)?.uid,
            };
            let gid = match numeric(group, spec)? {
                Some(gid) => gid,
                None => files.group_named(group, spec)?,
            };
            Ok((uid, gid))
        }
        _ => Err(SpecError::invalid(
            spec.field,
            format!("invalid user {:?}", spec.text),
        )),
    }
}

/// `Some(id)` for a decimal id in range, `None` for a name.
fn numeric(text: &str, spec: &UserSpec) -> Result<Option<u32>, SpecError> {
    if text.is_empty() {
        return Err(SpecError::invalid(
            spec.field,
            format!("invalid user {:?}", spec.text),
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(v) if v <= MAX_ID => Ok(Some(v as u32)),
        _ => Err(SpecError::invalid(
            spec.field,
            format!("id out of range in {:?}", spec.text),
        )),
    }
}

fn id(value: i64, field: &str) -> Result<u32, SpecError> {
    if (0..=MAX_ID).contains(&value) {
        Ok(value as u32)
    } else {
        Err(SpecError::invalid(
            field,
            format!("id {value} is out of range"),
        ))
    }
}

/// containerd's `WithAdditionalGIDs`: groups of `/etc/group` listing the user as a member, except
/// a group named like the user (its primary group is added separately).
fn member_groups(user: &str, files: &UserFiles<'_>) -> Result<Vec<u32>, SpecError> {
    let name = if !user.is_empty() && user.bytes().all(|b| b.is_ascii_digit()) {
        let Ok(uid) = user.parse::<u32>() else {
            return Ok(Vec::new());
        };
        match files.passwd()?.iter().find(|p| p.uid == uid) {
            Some(p) => p.name.clone(),
            None => return Ok(Vec::new()),
        }
    } else {
        user.to_string()
    };
    Ok(files
        .groups()?
        .iter()
        .filter(|g| g.name != name && g.members.contains(&name))
        .map(|g| g.gid)
        .collect())
}

/// One line of `/etc/passwd`.
#[derive(Debug, PartialEq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// One line of `/etc/group`.
#[derive(Debug, PartialEq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The image's user database, read on demand and at most once.
struct UserFiles<'a> {
    rootfs: &'a Rootfs,
    passwd: OnceCell<Vec<PasswdEntry>>,
    groups: OnceCell<Vec<GroupEntry>>,
}

impl UserFiles<'_> {
    fn read(&self, name: &str) -> Result<String, SpecError> {
        match self.rootfs.read_file(name, USER_FILE_LIMIT) {
            Ok(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(None) => Ok(String::new()),
            Err(e) => Err(SpecError::Precondition {
                field: "image".into(),
                reason: format!("cannot read {name} in the container rootfs: {e}"),
            }),
        }
    }

    fn passwd(&self) -> Result<&[PasswdEntry], SpecError> {
        if let Some(entries) = self.passwd.get() {
            return Ok(entries);
        }
        let entries = parse_passwd(&self.read(ETC_PASSWD)?);
        Ok(self.passwd.get_or_init(|| entries))
    }

    fn groups(&self) -> Result<&[GroupEntry], SpecError> {
        if let Some(entries) = self.groups.get() {
            return Ok(entries);
        }
        let entries = parse_group(&self.read(ETC_GROUP)?);
        Ok(self.groups.get_or_init(|| entries))
    }

    fn user_named(&self, name: &str, spec: &UserSpec) -> Result<&PasswdEntry, SpecError> {
        self.passwd()?
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                SpecError::invalid(
                    spec.field,
                    format!("user {name:?} not found in the image's {ETC_PASSWD}"),
                )
            })
    }

    fn group_named(&self, name: &str, spec: &UserSpec) -> Result<u32, SpecError> {
        self.groups()?
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.gid)
            .ok_or_else(|| {
                SpecError::invalid(
                    spec.field,
                    format!("group {name:?} not found in the image's {ETC_GROUP}"),
                )
            })
    }
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped like libc does.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?.trim();
            let _password = f.next()?;
            let uid = f.next()?.trim().parse().ok()?;
            let gid = f.next()?.trim().parse().ok()?;
            (!name.is_empty() && !name.starts_with('#')).then(|| PasswdEntry {
                name: name.to_string(),
                uid,
                gid,
            })
        })
        .collect()
}

/// `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?.trim();
            let _password = f.next()?;
            let gid = f.next()?.trim().parse().ok()?;
            let members = f
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            (!name.is_empty() && !name.starts_with('#')).then(|| GroupEntry {
                name: name.to_string(),
                gid,
                members,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Int64Value;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/:/sbin/nologin\n\
        default-user:x:1000:1000::/home/default-user:/bin/sh\n\
        broken line\n\
        app:x:2000:2001::/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:root\n\
        nogroup:x:65534:\n\
        default-user:x:1000:default-user\n\
        group-defined-in-image:x:50000:default-user\n\
        wheel:x:10:root,app\n\
        appgroup:x:2001:\n";

    fn rootfs_with(passwd: Option<&str>, group: Option<&str>) -> (tempfile::TempDir, Rootfs) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        if let Some(p) = passwd {
            std::fs::write(dir.path().join("etc/passwd"), p).unwrap();
        }
        if let Some(g) = group {
            std::fs::write(dir.path().join("etc/group"), g).unwrap();
        }
        let rootfs = Rootfs::open(dir.path()).unwrap();
        (dir, rootfs)
    }

    fn sc() -> LinuxContainerSecurityContext {
        LinuxContainerSecurityContext::default()
    }

    fn user(u: u32, g: u32, extra: &[u32]) -> ResolvedUser {
        ResolvedUser {
            uid: u,
            gid: g,
            additional_gids: extra.to_vec(),
        }
    }

    #[test]
    fn image_user_forms() {
        let (_d, fs) = rootfs_with(Some(PASSWD), Some(GROUP));
        assert_eq!(resolve(None, "", &fs).unwrap(), user(0, 0, &[0, 10]));
        assert_eq!(
            resolve(None, "app", &fs).unwrap(),
            user(2000, 2001, &[10, 2001])
        );
        assert_eq!(
            resolve(None, "2000", &fs).unwrap(),
            user(2000, 2001, &[10, 2001])
        );
        assert_eq!(
            resolve(None, "app:wheel", &fs).unwrap(),
            user(2000, 10, &[10])
        );
        assert_eq!(
            resolve(None, "1000:7", &fs).unwrap(),
            user(1000, 7, &[7, 50000])
        );
        // A uid unknown to /etc/passwd runs with gid 0.
        assert_eq!(resolve(None, "4242", &fs).unwrap(), user(4242, 0, &[0]));
        assert!(
            matches!(resolve(None, "ghost", &fs), Err(SpecError::Invalid { field, .. }) if field == "image.user")
        );
        assert!(resolve(None, "app:ghosts", &fs).is_err());
        assert!(resolve(None, "a:b:c", &fs).is_err());
        assert!(resolve(None, "99999999999", &fs).is_err());
    }

    #[test]
    fn security_context_wins_over_image() {
        let (_d, fs) = rootfs_with(Some(PASSWD), Some(GROUP));
        let mut s = sc();
        s.run_as_user = Some(Int64Value { value: 1001 });
        assert_eq!(resolve(Some(&s), "app", &fs).unwrap(), user(1001, 0, &[0]));
        s.run_as_group = Some(Int64Value { value: 1002 });
        assert_eq!(
            resolve(Some(&s), "app", &fs).unwrap(),
            user(1001, 1002, &[1002])
        );
        let mut s = sc();
        s.run_as_username = "nobody".into();
        assert_eq!(
            resolve(Some(&s), "app", &fs).unwrap(),
            user(65534, 65534, &[65534])
        );
        s.run_as_username = "missing".into();
        let err = resolve(Some(&s), "", &fs).unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == "security_context.run_as_username"),
            "{err}"
        );
    }

    #[test]
    fn run_as_group_alone_is_rejected() {
        let (_d, fs) = rootfs_with(Some(PASSWD), Some(GROUP));
        let mut s = sc();
        s.run_as_group = Some(Int64Value { value: 1002 });
        let err = resolve(Some(&s), "app", &fs).unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == "security_context.run_as_group"),
            "{err}"
        );
        let mut s = sc();
        s.run_as_user = Some(Int64Value { value: -1 });
        assert!(resolve(Some(&s), "", &fs).is_err());
    }

    #[test]
    fn supplemental_groups_merge_and_strict() {
        // critest's "SupplementalGroupsPolicy" cases.
        let (_d, fs) = rootfs_with(Some(PASSWD), Some(GROUP));
        let mut s = sc();
        s.run_as_user = Some(Int64Value { value: 1000 });
        s.supplemental_groups = vec![1234];
        assert_eq!(
            resolve(Some(&s), "", &fs).unwrap(),
            user(1000, 1000, &[1000, 1234, 50000])
        );
        s.supplemental_groups_policy = SupplementalGroupsPolicy::Strict as i32;
        assert_eq!(
            resolve(Some(&s), "", &fs).unwrap(),
            user(1000, 1000, &[1000, 1234])
        );
        s.supplemental_groups = vec![-5];
        let err = resolve(Some(&s), "", &fs).unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == "security_context.supplemental_groups[0]")
        );
    }

    #[test]
    fn no_user_database() {
        let (_d, fs) = rootfs_with(None, None);
        assert_eq!(resolve(None, "", &fs).unwrap(), user(0, 0, &[0]));
        assert_eq!(
            resolve(None, "123:456", &fs).unwrap(),
            user(123, 456, &[456])
        );
        assert!(resolve(None, "app", &fs).is_err());
    }

    #[test]
    fn hostile_passwd_symlink_is_resolved_inside_the_rootfs() {
        // The host file the image points at: it must never be read.
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        let (dir, fs) = rootfs_with(None, Some(GROUP));
        symlink(host.path().join("passwd"), dir.path().join("etc/passwd")).unwrap();
        let err = resolve(None, "evil", &fs).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        // Relative climbing is clamped at the rootfs too.
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        let climb = format!("../../../../../../../../..{}/passwd", host.path().display());
        symlink(climb, dir.path().join("etc/passwd")).unwrap();
        assert!(resolve(None, "evil", &fs).is_err());
        // A FIFO as /etc/passwd is refused instead of blocking the daemon.
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(matches!(
            resolve(None, "evil", &fs),
            Err(SpecError::Precondition { .. })
        ));
    }

    #[test]
    fn parsers_skip_garbage() {
        let p = parse_passwd("a:x:1:2\n#c:x:3:4\n:x:5:6\nb:x:q:1\n");
        assert_eq!(
            p,
            vec![PasswdEntry {
                name: "a".into(),
                uid: 1,
                gid: 2
            }]
        );
        let g = parse_group("g:x:7:a, b,\nh:x:8\n");
        assert_eq!(g[0].members, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(g[1].members, Vec::<String>::new());
    }
}
