//! `report`: the morning summary and chart of a real run with a scripted command agent, the
//! chart rendered by a real SVG renderer, and the report of a repository without a run.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// Renders `svg` to PNG with `rsvg-convert` (Debian's librsvg2-bin; scripts/test.sh installs it)
/// and returns its pixels as RGBA.
fn render_png(svg: &Path, png_path: &Path) -> (u32, u32, Vec<[u8; 4]>) {
    let out = Command::new("rsvg-convert")
        .arg("-o")
        .arg(png_path)
        .arg(svg)
        .output()
        .unwrap_or_else(|e| {
            panic!("rsvg-convert: {e}; install librsvg2-bin (scripts/test.sh does as root)")
        });
    assert!(
        out.status.success(),
        "rsvg-convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).expect("open png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let bytes = &buf[..info.buffer_size()];
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = match info.color_type {
        png::ColorType::Rgba => bytes
            .chunks_exact(4)
            .map(|p| [p[0], p[1], p[2], p[3]])
            .collect(),
        png::ColorType::Rgb => bytes
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, pixels)
}

/// The pixels that are not the white (or transparent) background.
fn inked(pixels: &[[u8; 4]]) -> usize {
    pixels
        .iter()
        .filter(|[r, g, b, a]| *a > 128 && (*r < 235 || *g < 235 || *b < 235))
        .count()
}

/// The pixels of the keeps' green.
fn green(pixels: &[[u8; 4]]) -> usize {
    pixels
        .iter()
        .filter(|[r, g, b, a]| *a > 128 && *g > 110 && *r < 60 && *b < 110 && *g > *b + 40)
        .count()
}

/// The pixels of the crashes' red.
fn red(pixels: &[[u8; 4]]) -> usize {
    pixels
        .iter()
        .filter(|[r, g, b, a]| *a > 128 && *r > 170 && *g < 90 && *b < 90)
        .count()
}

#[test]
fn report_summarises_keeps_failures_time_and_draws_the_chart() {
    let repo = number_repo(20);
    repo.write("guard.sh", "test \"$(cat src/value.txt)\" != 5\n");
    repo.git(&["add", "guard.sh"]);
    repo.git(&["commit", "-q", "-m", "guard"]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 15 > src/value.txt; echo 'lower to 15'"),
            (2, "echo 18 > src/value.txt; echo 'raise to 18'"),
            (3, "echo 'oops' > src/value.txt; echo 'break the output'"),
            (
                4,
                "echo 12 > src/value.txt; echo hint > src/extra.txt; echo 'lower to 12 with a hint'",
            ),
            (
                5,
                "echo 1 > src/value.txt; echo x > notes.txt; echo 'outside'",
            ),
            (6, "echo 'no change'"),
            (7, "echo 9 > src/value.txt; echo 'lower | to 9'"),
            (8, "echo 5 > src/value.txt; echo 'lower to 5'"),
        ],
    );
    repo.run_loop(
        "sh measure.sh",
        &agent,
        &[
            "--iterations",
            "8",
            "--refine-after",
            "10",
            "--guard",
            "sh guard.sh",
            "--rework",
            "0",
        ],
    )
    .expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "crash", "keep", "discard", "no-op", "keep", "discard"
        ]
    );
    let rows = repo.rows();

    // The side record: one timing line per recorded iteration, with the row's status.
    let jsonl = repo.read("autoresearch-results/engine/iterations.jsonl");
    let timings: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("timing line"))
        .collect();
    assert_eq!(timings.len(), 8, "{jsonl}");
    for (t, row) in timings.iter().zip(&rows[1..]) {
        assert_eq!(t["iteration"].to_string(), row[0]);
        assert_eq!(t["status"], row[5].as_str());
        assert!(t["started_at"].as_str().unwrap().ends_with('Z'), "{t}");
        assert!(t["total_ms"].as_u64().unwrap() >= t["agent_ms"].as_u64().unwrap());
    }
    assert!(timings[0]["verify_ms"].as_u64().is_some());

    let r = repo.run(&["report"]);
    r.expect_code(0);
    let path = r.stdout.trim();
    assert_eq!(
        Path::new(path),
        repo.root.join("autoresearch-results/engine/report.md"),
        "{}",
        r.stdout
    );
    let md = repo.read("autoresearch-results/engine/report.md");
    assert!(
        md.contains("baseline 20 -> best 9 at iteration 7 (-11, -55.0%)"),
        "{md}"
    );
    assert!(
        md.contains("- 8 iterations: 3 keep, 3 discard, 1 crash, 1 no-op"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| 1 | `{}` | 15 | -5 | 1 file, +1 -1 | lower to 15 |",
            rows[1][1]
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| 4 | `{}` | 12 | -3 | 2 files, +2 -1 | lower to 12 with a hint |",
            rows[4][1]
        )),
        "{md}"
    );
    assert!(md.contains("| 7 | `"), "{md}");
    assert!(md.contains("| lower \\| to 9 |"), "pipes are escaped: {md}");
    assert!(md.contains("| discard | [GUARD] | 1 | 8 |"), "{md}");
    assert!(md.contains("| discard | [SCOPE] | 1 | 5 |"), "{md}");
    assert!(
        md.contains("| discard | not better than the retained metric | 1 | 2 |"),
        "{md}"
    );
    assert!(
        md.contains("| crash | agent or verify failed | 1 | 3 |"),
        "{md}"
    );
    assert!(md.contains("| no-op | no change | 1 | 6 |"), "{md}");
    assert!(md.contains("Time split: agent "), "{md}");
    let table_rows = md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("Z | ") && l.split('|').count() == 12);
    assert_eq!(table_rows.count(), 8, "one timing row per iteration: {md}");
    assert!(
        md.contains("- [keep] lower to 15 (value 20 -> 15 (-5))"),
        "{md}"
    );
    assert!(
        md.contains("not running; no end record") || md.contains("ended: "),
        "{md}"
    );
    assert!(md.contains("![progress](progress.svg)"), "{md}");

    // The chart renders to a picture with ink, green keeps and red crash marks.
    let svg = repo.root.join("autoresearch-results/engine/progress.svg");
    let (w, h, pixels) = render_png(&svg, &repo.aux.join("progress.png"));
    assert_eq!((w, h), (1000, 560));
    let ink = inked(&pixels);
    assert!(
        ink > pixels.len() / 50,
        "the chart is nearly blank: {ink} inked pixels"
    );
    assert!(
        green(&pixels) > 200,
        "keeps are green: {} pixels",
        green(&pixels)
    );
    assert!(
        red(&pixels) > 20,
        "the crash is marked: {} pixels",
        red(&pixels)
    );

    let j = repo.run(&["report", "--json"]);
    j.expect_code(0);
    let v: Value = serde_json::from_str(j.stdout.trim()).expect("one JSON object");
    assert_eq!(v["report"], path);
    assert_eq!(v["svg"], svg.display().to_string());
    assert_eq!(v["keeps"], 3);
    assert_eq!(v["baseline"], 20);
    assert_eq!(v["best"], 9);
    assert_eq!(v["timing_records"], 8);
    assert_eq!(v["running"], false);

    // A run from before the timing records still gets its report.
    std::fs::remove_file(
        repo.root
            .join("autoresearch-results/engine/iterations.jsonl"),
    )
    .unwrap();
    repo.run(&["report"]).expect_code(0);
    let md = repo.read("autoresearch-results/engine/report.md");
    assert!(md.contains("no timing records"), "{md}");
    assert_eq!(
        repo.status(),
        "",
        "the report lives in the hidden autoresearch-results/engine/"
    );
}

#[test]
fn report_without_a_run_is_a_clear_error() {
    let repo = number_repo(3);
    let before = repo.snapshot();
    let r = repo.run(&["report"]);
    r.expect_refusal(&["no autoresearch run in", "codex-autoresearch run"]);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    repo.assert_untouched(&before);
    assert!(!repo.exists("autoresearch-results"), "nothing is written");
}
