//! Terminal control of a running container: `POST /containers/{id}/resize`.
//!
//! The attach stream itself is a byte pipe to the shim ([`ContainerService::attach_stream`]);
//! the shim owns the pty master, so a resize is one request to it.

use berth_shim_protocol::{Reply, Request};

use super::{ContainerService, shim};
use crate::DaemonError;

impl ContainerService {
    /// `POST /containers/{id}/resize?h=&w=`: sets the container's terminal size (the
    /// process gets SIGWINCH). A container without a TTY accepts and ignores it, as
    /// Docker does.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` ("Container … is not running") when it does not run.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), DaemonError> {
        let entry = self.get(name)?;
        let r = entry.record();
        if !r.state.running {
            return Err(DaemonError::conflict(format!(
                "Container {} is not running",
                r.id
            )));
        }
        match shim::call(&self.state_dir(&r.id), &Request::Resize { height, width }).await {
            Ok(Reply::Ok) => Ok(()),
            Ok(other) => Err(DaemonError::internal(format!(
                "cannot resize the terminal of container {}: {other:?}",
                r.id
            ))),
            Err(_) => Err(DaemonError::conflict(format!(
                "Container {} is not running",
                r.id
            ))),
        }
    }
}
