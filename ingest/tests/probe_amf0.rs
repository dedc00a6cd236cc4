#[test]
fn probe() {
    // "foo" command, txn 1.0, then ECMA array with size u32::MAX
    let mut b = vec![0x02, 0, 3, b'f', b'o', b'o', 0x00];
    b.extend_from_slice(&1.0f64.to_be_bytes());
    b.extend_from_slice(&[0x08, 0xff, 0xff, 0xff, 0xff]);
    let r = scuffle_rtmp::command_messages::Command::read(bytes::Bytes::from(b));
    println!("{:?}", r.is_ok());
}
