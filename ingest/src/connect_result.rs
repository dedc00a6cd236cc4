//! The `connect` command's `_result` for an Enhanced RTMP client: the usual
//! properties and status, plus the `fourCcList` of the video codecs we take
//! among those it offered (E-RTMP v2, "Enhancing NetConnection connect
//! Command"), so that a client like OBS can choose HEVC or AV1 knowing the
//! server packages it. A client that sent no list gets the legacy answer.

use bytes::Bytes;
use scuffle_amf0::{Amf0Encoder, Amf0Object, Amf0Value};
use scuffle_rtmp::chunk::Chunk;
use scuffle_rtmp::chunk::writer::ChunkWriter;
use scuffle_rtmp::messages::MessageType;

use crate::error::IngestError;

/// The video FourCCs this server packages (passthrough) and decodes (ladders).
pub(crate) const VIDEO_FOUR_CCS: [&str; 3] = ["avc1", "hvc1", "av01"];

/// The chunk stream RTMP servers send command answers on.
const COMMAND_CHUNK_STREAM: u32 = 3;

/// Of the client's `offered` FourCCs (`*`: any), those we take, in our order.
pub(crate) fn accepted(offered: &[String]) -> Vec<&'static str> {
    let any = offered.iter().any(|c| c == "*");
    VIDEO_FOUR_CCS.into_iter().filter(|ours| any || offered.iter().any(|c| c == ours)).collect()
}

/// Writes the `_result` of `connect` for a client that offered `offered`.
pub(crate) fn write_enhanced(
    out: &mut Vec<u8>,
    writer: &ChunkWriter,
    transaction_id: f64,
    offered: &[String],
) -> Result<(), IngestError> {
    let list: Vec<Amf0Value<'static>> = accepted(offered).into_iter().map(|c| Amf0Value::String(c.into())).collect();
    let properties: Amf0Object<'static> = [
        ("fmsVer".into(), Amf0Value::String("FMS/3,0,1,123".into())),
        ("capabilities".into(), Amf0Value::Number(31.0)),
        ("fourCcList".into(), Amf0Value::Array(list.into())),
    ]
    .into_iter()
    .collect();
    let information: Amf0Object<'static> = [
        ("level".into(), Amf0Value::String("status".into())),
        ("code".into(), Amf0Value::String("NetConnection.Connect.Success".into())),
        ("description".into(), Amf0Value::String("Connection Succeeded.".into())),
        ("objectEncoding".into(), Amf0Value::Number(0.0)),
    ]
    .into_iter()
    .collect();
    let mut payload = Vec::new();
    let mut encoder = Amf0Encoder::new(&mut payload);
    for value in [
        Amf0Value::String("_result".into()),
        Amf0Value::Number(transaction_id),
        Amf0Value::Object(properties),
        Amf0Value::Object(information),
    ] {
        value.encode(&mut encoder).map_err(|_| IngestError::Command("the connect result could not be encoded"))?;
    }
    let chunk = Chunk::new(COMMAND_CHUNK_STREAM, 0, MessageType::CommandAMF0, 0, Bytes::from(payload));
    writer.write_chunk(out, chunk)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use scuffle_amf0::Amf0Decoder;

    use super::*;

    #[test]
    fn the_list_is_what_we_take_of_what_was_offered() {
        let offered = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(accepted(&offered(&["av01", "vp09", "hvc1"])), ["hvc1", "av01"]);
        assert_eq!(accepted(&offered(&["*"])), VIDEO_FOUR_CCS);
        assert!(accepted(&offered(&["vp09"])).is_empty());
    }

    #[test]
    fn the_result_carries_the_list_and_the_success_status() {
        let mut out = Vec::new();
        write_enhanced(&mut out, &ChunkWriter::default(), 1.0, &["hvc1".into(), "vp09".into()]).unwrap();
        // Read back as the session reads a client's chunks (the payload spans several 128-byte chunks).
        let mut reader = crate::chunk::ChunkReader::default();
        let mut buf = bytes::BytesMut::from(&out[..]);
        let message = reader.read(&mut buf).unwrap().expect("one whole message");
        assert_eq!(message.type_id, 20);
        let values = Amf0Decoder::from_slice(&message.payload).decode_all().unwrap();
        assert_eq!(values[0], Amf0Value::String("_result".into()));
        let Amf0Value::Object(properties) = &values[2] else { panic!("{values:?}") };
        let list = properties.iter().find(|(k, _)| k.as_str() == "fourCcList").map(|(_, v)| v.clone());
        assert_eq!(list, Some(Amf0Value::Array(vec![Amf0Value::String("hvc1".into())].into())));
        let Amf0Value::Object(information) = &values[3] else { panic!("{values:?}") };
        let code = information.iter().find(|(k, _)| k.as_str() == "code").map(|(_, v)| v.clone());
        assert_eq!(code, Some(Amf0Value::String("NetConnection.Connect.Success".into())));
    }
}
