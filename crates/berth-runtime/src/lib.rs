//! OCI runtime spec generation with Docker's defaults, and the built-in runtime.
//!
//! berth runs containers with youki's `libcontainer`, which must never run inside the
//! multi-threaded daemon (it deadlocks there), so this crate is synchronous and is
//! linked only by `berth-shim`, one small process per container.
//!
//! Main pieces:
//! - [`spec::build_spec`]: a [`berth_shim_protocol::LaunchSpec`] → an OCI
//!   [`oci_spec::runtime::Spec`] with Docker's defaults (capabilities, mounts, devices,
//!   masked paths, namespaces, resources, seccomp). Pure, unit tested without root.
//! - [`caps`] and [`seccomp`]: Docker's capability rules and its seccomp profile
//!   format, translated as moby translates them.
//! - [`user`]: `--user` resolved against the container's own /etc/passwd and
//!   /etc/group, read through the rootfs with in-root resolution.
//! - [`container`]: create / start / kill / delete with libcontainer, and the mapping
//!   of failures to [`berth_shim_protocol::LaunchError`] kinds (127, 126, 125).
//! - [`console`]: the console socket a pty master made inside the container arrives on.
//! - [`exec`]: `docker exec` through libcontainer's tenant builder, with the init's rules.
//! - [`host`]: the facts about the host the spec depends on.
#![warn(missing_docs)]
// unsafe is confined to libc calls (getrlimit, kill, execve, signals), each with a SAFETY note.
#![allow(unsafe_code)]

pub mod caps;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod exec;
pub mod host;
pub mod seccomp;
pub mod spec;
pub mod user;
