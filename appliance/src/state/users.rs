//! Console users (besides the built-in `admin`): created, changed (role,
//! disabled, password hash) and listed by an admin. Passwords arrive hashed.

use std::ops::Bound;

use redb::ReadableTable;

use super::clock;
use super::error::StoreError;
use super::page::Page;
use super::records::Role;
use super::records::user::{User, UserPatch, validate_user_name};
use super::rows::{decode, encode};
use super::store::Store;
use super::tables::USERS;

impl Store {
    /// Creates a user with an already hashed password.
    pub fn create_user(&self, name: &str, role: Role, password_hash: String) -> Result<User, StoreError> {
        validate_user_name(name)?;
        let now = clock::now_ms();
        let user =
            User { name: name.to_string(), role, disabled: false, password_hash, created_ms: now, updated_ms: now };
        self.write(|tx| {
            let mut table = tx.open_table(USERS)?;
            if table.get(name)?.is_some() {
                return Err(StoreError::Duplicate { what: "user", id: name.to_string() });
            }
            table.insert(name, encode(&user).as_slice())?;
            Ok(())
        })?;
        Ok(user)
    }

    /// The user of that name, if any.
    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        if name.len() > 64 {
            return Ok(None);
        }
        self.read(|tx| tx.open_table(USERS)?.get(name)?.map(|v| decode(v.value())).transpose())
    }

    /// Applies `patch`; returns the user before and after.
    pub fn update_user(&self, name: &str, patch: UserPatch) -> Result<(User, User), StoreError> {
        self.write(|tx| {
            let mut table = tx.open_table(USERS)?;
            let before: User = match table.get(name)? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::not_found("user", name)),
            };
            let mut after = before.clone();
            after.role = patch.role.unwrap_or(after.role);
            after.disabled = patch.disabled.unwrap_or(after.disabled);
            if let Some(hash) = patch.password_hash {
                after.password_hash = hash;
            }
            after.updated_ms = clock::now_ms();
            table.insert(name, encode(&after).as_slice())?;
            Ok((before, after))
        })
    }

    /// Users by name after the cursor (a name).
    pub fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Page<User>, StoreError> {
        self.read(|tx| {
            let table = tx.open_table(USERS)?;
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut items = Vec::new();
            for entry in table.range::<&str>((start, Bound::Unbounded))?.take(limit + 1) {
                items.push(decode::<User>(entry?.1.value())?);
            }
            Ok(Page::from_items(items, limit, |u| u.name.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_created_changed_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let olga = store.create_user("olga", Role::Operator, "$argon2id$x".into()).unwrap();
        assert!(matches!(store.create_user("olga", Role::Viewer, "h".into()), Err(StoreError::Duplicate { .. })));
        assert!(matches!(store.create_user("admin", Role::Viewer, "h".into()), Err(StoreError::Duplicate { .. })));
        assert!(store.create_user("Not Valid", Role::Viewer, "h".into()).is_err());
        let (before, after) =
            store.update_user("olga", UserPatch { disabled: Some(true), ..UserPatch::default() }).unwrap();
        assert_eq!((before, after.disabled, after.role), (olga, true, Role::Operator));
        assert_eq!(store.user("olga").unwrap(), Some(after));
        store.create_user("ann", Role::Viewer, "h".into()).unwrap();
        let page = store.list_users(None, 1).unwrap();
        assert_eq!((page.items[0].name.as_str(), page.next_cursor.as_deref()), ("ann", Some("ann")));
        assert_eq!(store.list_users(Some("ann"), 5).unwrap().items[0].name, "olga");
        assert!(matches!(store.update_user("nobody", UserPatch::default()), Err(StoreError::NotFound { .. })));
    }
}
