//! What the spec builder needs from the image store and the daemon's settings.

use crate::daemon::Daemon;
use longshore_spec::{ImageConfigView, SpecSettings};

/// The runtime parts of an image's config.
pub(crate) fn image_view(image: &longshore_image::Image, name: &str) -> ImageConfigView {
    let c = &image.config;
    ImageConfigView {
        user: c.user.clone(),
        env: c.env.clone(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        working_dir: c.working_dir.clone(),
        volumes: c.volumes.clone(),
        stop_signal: c.stop_signal.clone(),
        image_name: name.to_string(),
    }
}

/// The node-wide spec settings, made once at start.
pub(crate) fn settings(d: &Daemon) -> &SpecSettings {
    &d.spec_settings
}
