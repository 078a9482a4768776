//! Images in CRI's terms.

use longshore_image::Image;

use crate::api::{self, ImageSpec, Int64Value};

/// The CRI `Image` message.
pub(crate) fn cri_image(image: &Image) -> api::Image {
    let (uid, username) = image_user(&image.config.user);
    api::Image {
        id: image.id.clone(),
        repo_tags: image.repo_tags.clone(),
        repo_digests: image.repo_digests.clone(),
        size: image.size,
        uid,
        username,
        spec: Some(ImageSpec {
            image: image.id.clone(),
            ..Default::default()
        }),
        pinned: image.pinned,
    }
}

/// The image's USER as CRI reports it: a numeric uid, or a user name, or neither.
fn image_user(user: &str) -> (Option<Int64Value>, String) {
    let name = user.split(':').next().unwrap_or("");
    if name.is_empty() {
        return (None, String::new());
    }
    match name.parse::<i64>() {
        Ok(uid) => (Some(Int64Value { value: uid }), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::image_user;

    #[test]
    fn user_forms() {
        assert_eq!(image_user("").0, None);
        assert_eq!(image_user("1002").0.map(|v| v.value), Some(1002));
        assert_eq!(image_user("1003:1003").0.map(|v| v.value), Some(1003));
        assert_eq!(image_user("www-data:www-data").1, "www-data");
    }
}
