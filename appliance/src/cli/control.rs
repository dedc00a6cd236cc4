//! Where the `channel`, `token` and `admin` commands act: the running
//! appliance, through its REST API on the control socket (so it sees every
//! change at once: a stop ends the live session), or, when no server runs,
//! the state file itself. Both give the commands the same views to print.

use media::LatencyMode;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::local_api::LocalApi;
use crate::config::Config;
use crate::http::api::resources::{ChannelResource, PublicUrls};
use crate::state::{ChannelState, NewChannel, Role, Store, TokenGrant, validate_name};

/// The running server, or the state file when none runs.
#[derive(Debug)]
pub enum Control {
    Server(LocalApi),
    /// The file, and the URLs the configuration gives (no server to ask).
    File {
        store: Store,
        urls: PublicUrls,
    },
}

/// A channel as the commands print it.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelView {
    pub name: String,
    pub state: ChannelState,
    pub latency_mode: LatencyMode,
    pub stream_key: Option<String>,
    pub publish_url: Option<String>,
    /// The backup encoder's publish URL, when the channel has a backup key.
    #[serde(default)]
    pub backup_publish_url: Option<String>,
    pub playback_url: String,
    /// The session in progress (after a stop: the one being ended).
    pub current_session: Option<String>,
}

impl From<ChannelResource> for ChannelView {
    fn from(c: ChannelResource) -> Self {
        ChannelView {
            name: c.name,
            state: c.state,
            latency_mode: c.latency_mode,
            stream_key: c.stream_key,
            publish_url: c.publish_url,
            backup_publish_url: c.backup_publish_url,
            playback_url: c.playback_url,
            current_session: c.current_session,
        }
    }
}

/// A token as the commands print it (never its secret).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// A token just created, with its text (shown once).
#[derive(Debug, Deserialize)]
struct CreatedToken {
    #[serde(flatten)]
    resource: TokenView,
    /// The token's text.
    token: String,
}

impl Control {
    /// The running appliance if one answers on the control socket, else the file.
    pub fn open(config: &Config) -> anyhow::Result<Control> {
        if let Some(api) = LocalApi::connect(&config.data_dir)? {
            return Ok(Control::Server(api));
        }
        let urls = PublicUrls::new(config, config.rtmp_addr().port(), config.http_addr().port());
        Ok(Control::File { store: Store::open(&config.data_dir)?, urls })
    }

    fn view(channel: crate::state::Channel, urls: &PublicUrls) -> ChannelView {
        ChannelResource::full(channel, urls).into()
    }

    fn channel_call(
        api: &LocalApi,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<ChannelView> {
        api.call(method, segments, &[], body)?.ok_or_else(|| anyhow::anyhow!("the running appliance sent no channel"))
    }

    pub fn create_channel(&self, new: NewChannel, start: bool) -> anyhow::Result<ChannelView> {
        // Checked here too, so a bad name reads as it always has.
        validate_name(&new.name)?;
        match self {
            Control::Server(api) => {
                let body = json!({
                    "name": new.name,
                    "latency_mode": new.latency_mode,
                    "output": new.output,
                    "encoder_policy": new.encoder_policy,
                    "max_session_seconds": new.max_session_seconds,
                    "start": start,
                    "backup_input": new.backup,
                });
                Self::channel_call(api, Method::POST, &["channels"], Some(body))
            }
            Control::File { store, urls } => Ok(Self::view(store.create_channel(new, start)?, urls)),
        }
    }

    /// Every channel, by name.
    pub fn channels(&self) -> anyhow::Result<Vec<ChannelView>> {
        let mut all: Vec<ChannelView> = match self {
            Control::Server(api) => api.list(&["channels"])?,
            Control::File { store, urls } => store.list()?.into_iter().map(|c| Self::view(c, urls)).collect(),
        };
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    pub fn remove_channel(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Control::Server(api) => {
                api.call::<serde_json::Value>(Method::DELETE, &["channels", name], &[], None).map(drop)
            }
            Control::File { store, .. } => store.remove(name).map(drop).map_err(Into::into),
        }
    }

    pub fn start_channel(&self, name: &str) -> anyhow::Result<ChannelView> {
        match self {
            Control::Server(api) => Self::channel_call(api, Method::POST, &["channels", name, "start"], None),
            Control::File { store, urls } => Ok(Self::view(store.start_channel(name)?, urls)),
        }
    }

    /// Stops a channel; its `current_session` is the session in progress it ends.
    pub fn stop_channel(&self, name: &str) -> anyhow::Result<ChannelView> {
        match self {
            Control::Server(api) => Self::channel_call(api, Method::POST, &["channels", name, "stop"], None),
            Control::File { store, urls } => {
                let (mut channel, ended) = store.stop_channel(name)?;
                channel.current_session = ended.map(|(session, _)| session);
                Ok(Self::view(channel, urls))
            }
        }
    }

    /// Replaces the primary stream key, or the backup key (`backup`; one is made when the channel has none).
    pub fn rotate_stream_key(&self, name: &str, backup: bool) -> anyhow::Result<ChannelView> {
        match self {
            Control::Server(api) => {
                let query: &[(&str, &str)] = if backup { &[("input", "backup")] } else { &[] };
                api.call(Method::POST, &["channels", name, "rotate-key"], query, None)?
                    .ok_or_else(|| anyhow::anyhow!("the running appliance sent no channel"))
            }
            Control::File { store, urls } if backup => Ok(Self::view(store.rotate_backup_key(name)?, urls)),
            Control::File { store, urls } => Ok(Self::view(store.rotate_stream_key(name)?, urls)),
        }
    }

    /// Creates a token; returns it with its text (shown once).
    pub fn create_token(&self, name: &str, grant: TokenGrant) -> anyhow::Result<(TokenView, String)> {
        match self {
            Control::Server(api) => {
                let body = json!({ "name": name, "role": grant.role, "channels": grant.channels });
                let created: CreatedToken = api
                    .call(Method::POST, &["tokens"], &[], Some(body))?
                    .ok_or_else(|| anyhow::anyhow!("the running appliance sent no token"))?;
                Ok((created.resource, created.token))
            }
            Control::File { store, .. } => {
                let (token, text) = store.create_token(name, grant)?;
                Ok((TokenView { role: token.role(), id: token.id, name: token.name }, text))
            }
        }
    }

    /// Every token, by id.
    pub fn tokens(&self) -> anyhow::Result<Vec<TokenView>> {
        match self {
            Control::Server(api) => api.list(&["tokens"]),
            Control::File { store, .. } => {
                let mut all = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let page = store.list_tokens(cursor.as_deref(), 500)?;
                    all.extend(page.items.into_iter().map(|t| TokenView { role: t.role(), id: t.id, name: t.name }));
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => return Ok(all),
                    }
                }
            }
        }
    }

    pub fn revoke_token(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Control::Server(api) => api.call::<serde_json::Value>(Method::DELETE, &["tokens", id], &[], None).map(drop),
            Control::File { store, .. } => store.revoke_token(id).map(drop).map_err(Into::into),
        }
    }
}

/// Sets the console admin password: through the running appliance (which
/// ends every console session), or in the password file when none runs (no
/// console session exists then).
pub fn set_admin_password(config: &Config, password: &str) -> anyhow::Result<()> {
    match LocalApi::connect(&config.data_dir)? {
        Some(api) => api
            .call::<serde_json::Value>(
                Method::PUT,
                &["console", "password"],
                &[],
                Some(json!({ "password": password })),
            )
            .map(drop),
        None => crate::http::console::password::set(&config.data_dir, password),
    }
}
