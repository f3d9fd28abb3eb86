//! The reference model of the endpoint's semantics (docs/protocol.md). Its one
//! user is `core/tests/coalescing.rs`, which proves coalescing safe against it.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{OpKind, CODE_INVALID_ID_TOKEN, CODE_USER_NOT_REGISTERED};

/// Final state an app can observe: registered users, the device's user, and links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub users: BTreeSet<String>,
    pub device_user: Option<String>,
    /// (channel_id, line_user_id) → user_id
    pub links: BTreeMap<(String, String), String>,
}

impl Model {
    /// Applies one op; `Err(code)` when the endpoint would reject it.
    pub fn apply(&mut self, op: &OpKind) -> Result<(), u32> {
        match op {
            OpKind::SetUserId { user_id } => {
                self.users.insert(user_id.clone());
                self.device_user = Some(user_id.clone());
            }
            OpKind::LinkLineId {
                user_id,
                line_user_id,
                channel_id,
            } => {
                if !self.users.contains(user_id) {
                    return Err(CODE_USER_NOT_REGISTERED);
                }
                self.links
                    .insert((channel_id.clone(), line_user_id.clone()), user_id.clone());
            }
            OpKind::LinkLineIdToken {
                user_id,
                id_token,
                channel_id,
            } => {
                if !self.users.contains(user_id) {
                    return Err(CODE_USER_NOT_REGISTERED);
                }
                // The model trusts the token (the endpoint verifies it) and links its `sub`.
                let line_user_id =
                    crate::protocol::id_token_subject(id_token).ok_or(CODE_INVALID_ID_TOKEN)?;
                self.links
                    .insert((channel_id.clone(), line_user_id), user_id.clone());
            }
            OpKind::UnlinkLineId {
                user_id,
                line_user_id,
                channel_id,
            } => {
                let key = (channel_id.clone(), line_user_id.clone());
                if self.links.get(&key) == Some(user_id) {
                    self.links.remove(&key);
                }
            }
        }
        Ok(())
    }
}
