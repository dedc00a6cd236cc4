//! `appliance probe` and `appliance bench transcode`: the encoders this box
//! has (or precisely why not), and what they do against the `ffmpeg` program.

use std::path::Path;

use accel::Calibration;
use accel::bench::{BenchOptions, BenchReport};

/// `appliance probe`.
pub fn probe_command(json: bool) -> anyhow::Result<()> {
    let report = accel::probe::probe();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// `appliance bench transcode`.
pub fn bench_command(data_dir: &Path, options: BenchOptions, json: bool, calibrate: bool) -> anyhow::Result<()> {
    let probe = accel::probe::probe();
    let report: BenchReport = accel::bench::run(&options, &probe)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if calibrate {
        let previous = Calibration::load(data_dir)?;
        let path = report.calibration(&previous).save(data_dir)?;
        eprintln!("slot capacities written to {}", path.display());
    }
    Ok(())
}
