//! The client's AMF0 commands this server acts on, read leniently with
//! scuffle-amf0 (after `amf0::check_amf0`), so that a missing optional
//! argument does not end a publish.

use scuffle_amf0::{Amf0Decoder, Amf0Value};

use crate::amf0::check_amf0;
use crate::error::IngestError;

/// Values read from one command at most; publishers send four or five.
const MAX_VALUES: usize = 8;
/// Unknown command names are cut to this many characters for logs.
const MAX_NAME: usize = 64;
/// FourCCs kept from a client's `fourCcList` (there are a handful of codecs).
const MAX_FOUR_CCS: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientCommand {
    Connect {
        transaction_id: f64,
        app: String,
        /// Enhanced RTMP: the video FourCCs the client can send (`fourCcList`), when it sent one.
        four_cc_list: Option<Vec<String>>,
    },
    CreateStream {
        transaction_id: f64,
    },
    /// `name` is the publishing name as sent (stream key, maybe with a `?query`).
    Publish {
        transaction_id: f64,
        name: String,
    },
    /// `deleteStream`, `closeStream`, `FCUnpublish`.
    Unpublish,
    /// `play` or `play2`.
    Play {
        transaction_id: f64,
    },
    /// `releaseStream`, `FCPublish`, `_checkbw` and the like: nothing to do.
    Other(String),
}

/// Reads an AMF0 command message.
pub(crate) fn read(payload: &[u8]) -> Result<ClientCommand, IngestError> {
    check_amf0(payload)?;
    let mut decoder = Amf0Decoder::from_slice(payload);
    let mut values = Vec::new();
    while values.len() < MAX_VALUES {
        match decoder.decode_value() {
            Ok(value) => values.push(value),
            // The end, or a value we cannot read: act on what came before it.
            Err(_) => break,
        }
    }
    let Some(Amf0Value::String(name)) = values.first() else {
        return Err(IngestError::Command("a command without a name"));
    };
    let transaction_id = match values.get(1) {
        Some(Amf0Value::Number(n)) => *n,
        _ => 0.0,
    };
    let string = |i: usize| match values.get(i) {
        Some(Amf0Value::String(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    Ok(match name.as_str() {
        "connect" => {
            let object = match values.get(2) {
                Some(Amf0Value::Object(object)) => Some(object),
                _ => None,
            };
            let field = |name: &str| object.and_then(|o| o.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v));
            let app = match field("app") {
                Some(Amf0Value::String(s)) => Some(s.as_str().to_owned()),
                _ => None,
            };
            let app = app.ok_or(IngestError::Command("connect without an app"))?;
            let four_cc_list = match field("fourCcList") {
                Some(Amf0Value::Array(list)) => Some(
                    list.iter()
                        .filter_map(|v| match v {
                            Amf0Value::String(s) => Some(s.as_str().chars().take(4).collect()),
                            _ => None,
                        })
                        .take(MAX_FOUR_CCS)
                        .collect(),
                ),
                _ => None,
            };
            ClientCommand::Connect { transaction_id, app, four_cc_list }
        }
        "createStream" => ClientCommand::CreateStream { transaction_id },
        "publish" => {
            let name = string(3).ok_or(IngestError::Command("publish without a stream name"))?;
            ClientCommand::Publish { transaction_id, name }
        }
        "deleteStream" | "closeStream" | "FCUnpublish" => ClientCommand::Unpublish,
        "play" | "play2" => ClientCommand::Play { transaction_id },
        other => ClientCommand::Other(other.chars().take(MAX_NAME).collect()),
    })
}

#[cfg(test)]
mod tests {
    use scuffle_amf0::{Amf0Encoder, Amf0Object};

    use super::*;

    fn encode(values: &[Amf0Value<'_>]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut enc = Amf0Encoder::new(&mut buf);
        for v in values {
            v.encode(&mut enc).unwrap();
        }
        buf
    }

    fn s(text: &str) -> Amf0Value<'static> {
        Amf0Value::String(text.to_owned().into())
    }

    #[test]
    fn commands() {
        let connect: Amf0Object =
            [("app".into(), s("live")), ("tcUrl".into(), s("rtmp://h/live"))].into_iter().collect();
        let no_app: Amf0Object = [("tcUrl".into(), s("rtmp://h/live"))].into_iter().collect();
        let four_ccs = Amf0Value::Array(vec![s("av01"), s("hvc1"), s("vp09"), Amf0Value::Number(1.0)].into());
        let enhanced: Amf0Object = [("app".into(), s("live")), ("fourCcList".into(), four_ccs)].into_iter().collect();
        let cases: Vec<(&str, Vec<u8>, Result<ClientCommand, &str>)> = vec![
            (
                "connect",
                encode(&[s("connect"), Amf0Value::Number(1.0), Amf0Value::Object(connect)]),
                Ok(ClientCommand::Connect { transaction_id: 1.0, app: "live".into(), four_cc_list: None }),
            ),
            (
                "connect from an Enhanced RTMP client",
                encode(&[s("connect"), Amf0Value::Number(1.0), Amf0Value::Object(enhanced)]),
                Ok(ClientCommand::Connect {
                    transaction_id: 1.0,
                    app: "live".into(),
                    four_cc_list: Some(vec!["av01".into(), "hvc1".into(), "vp09".into()]),
                }),
            ),
            (
                "connect without app",
                encode(&[s("connect"), Amf0Value::Number(1.0), Amf0Value::Object(no_app)]),
                Err("command: connect without an app"),
            ),
            (
                "createStream",
                encode(&[s("createStream"), Amf0Value::Number(4.0), Amf0Value::Null]),
                Ok(ClientCommand::CreateStream { transaction_id: 4.0 }),
            ),
            (
                "publish",
                encode(&[s("publish"), Amf0Value::Number(5.0), Amf0Value::Null, s("key?x=1"), s("live")]),
                Ok(ClientCommand::Publish { transaction_id: 5.0, name: "key?x=1".into() }),
            ),
            (
                "publish without a type",
                encode(&[s("publish"), Amf0Value::Number(5.0), Amf0Value::Null, s("key")]),
                Ok(ClientCommand::Publish { transaction_id: 5.0, name: "key".into() }),
            ),
            (
                "publish without a name",
                encode(&[s("publish"), Amf0Value::Number(5.0), Amf0Value::Null]),
                Err("command: publish without a stream name"),
            ),
            (
                "FCUnpublish",
                encode(&[s("FCUnpublish"), Amf0Value::Number(6.0), Amf0Value::Null, s("key")]),
                Ok(ClientCommand::Unpublish),
            ),
            (
                "deleteStream",
                encode(&[s("deleteStream"), Amf0Value::Number(7.0), Amf0Value::Null, Amf0Value::Number(1.0)]),
                Ok(ClientCommand::Unpublish),
            ),
            (
                "play",
                encode(&[s("play"), Amf0Value::Number(8.0), Amf0Value::Null, s("key")]),
                Ok(ClientCommand::Play { transaction_id: 8.0 }),
            ),
            (
                "releaseStream",
                encode(&[s("releaseStream"), Amf0Value::Number(2.0), Amf0Value::Null, s("key")]),
                Ok(ClientCommand::Other("releaseStream".into())),
            ),
            ("no name", encode(&[Amf0Value::Number(1.0)]), Err("command: a command without a name")),
            ("empty", vec![], Err("command: a command without a name")),
            (
                "bomb",
                [encode(&[s("foo"), Amf0Value::Number(1.0)]), vec![0x08, 0xff, 0xff, 0xff, 0xff]].concat(),
                Err("AMF0 message rejected: ECMA array count exceeds the message"),
            ),
        ];
        for (name, bytes, want) in cases {
            let got = read(&bytes).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
    }
}
