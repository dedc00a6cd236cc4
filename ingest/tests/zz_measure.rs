mod support;
use std::time::{Duration, Instant};
use ingest::IngestConfig;
use support::*;

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
fn rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with("VmRSS")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure() {
    let dir = TempDir::new("measure");
    let file = dir.0.join("m.flv");
    let file = file.to_str().unwrap();
    run_tool("ffmpeg", &["-hide_banner","-nostdin","-y","-f","lavfi","-i","testsrc2=size=1280x720:rate=30","-f","lavfi","-i","sine=sample_rate=48000","-t","40","-c:v","libx264","-preset","ultrafast","-b:v","6M","-g","60","-bf","2","-pix_fmt","yuv420p","-c:a","aac","-f","flv",file]).await;
    let size = std::fs::metadata(file).unwrap().len();
    let mut h = Harness::start(&["m"], IngestConfig::default()).await;
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let ff = Ffmpeg::spawn(&["-i", file, "-c", "copy", "-f", "flv", &h.url("m")]);
    let mut g = h.next_grant(Duration::from_secs(10)).await;
    let r = drain(&mut g.rx, Duration::from_secs(60)).await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    ff.finish(Duration::from_secs(10)).await;
    let bytes: usize = r.units.iter().map(|(_, u)| u.data.len()).sum();
    println!("file {size} bytes; {} units, {bytes} payload bytes in {wall:.2}s wall: {:.0} units/s, {:.1} MB/s; our process cpu {cpu:.2}s => {:.1} us/unit, {:.2} cpu-s per GB",
        r.units.len(), r.units.len() as f64 / wall, bytes as f64 / wall / 1e6, cpu * 1e6 / r.units.len() as f64, cpu / (bytes as f64 / 1e9));
    println!("dropped units (consumer behind): {}", g.rx.stats().dropped_units());

    // Memory per idle connection after handshake + connect.
    let cfg = IngestConfig { max_connections: 2000, handshake_deadline: Duration::from_secs(60), ..IngestConfig::default() };
    let h2 = Harness::start(&[], cfg).await;
    let mut clients = Vec::new();
    for _ in 0..20 { let mut c = RawClient::connect(h2.addr()).await; c.handshake().await; clients.push(c); }
    let before = rss_kb();
    for _ in 0..500 {
        let mut c = RawClient::connect(h2.addr()).await;
        c.handshake().await;
        c.command(0, &[scuffle_amf0::Amf0Value::String("connect".into()), scuffle_amf0::Amf0Value::Number(1.0), scuffle_amf0::Amf0Value::Object([("app".into(), scuffle_amf0::Amf0Value::String("live".into()))].into_iter().collect())]).await.unwrap();
        clients.push(c);
    }
    eventually(Duration::from_secs(10), "all", || h2.server.connections() == 520).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kb();
    println!("500 connections (handshake+connect): rss +{} KiB => {:.1} KiB per connection incl. the client side", after - before, (after - before) as f64 / 500.0);
}
