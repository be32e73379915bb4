//! `report.html` in a real browser: Chromium, headless, at 1440×900, on
//! the format-1 FAIL run of `tests/fixtures/` re-rendered by this baton.
//! The DOM is read after the page's scripts ran (`--dump-dom`): the first
//! screen holds the verdict, the failure window, the first incident's
//! cause and its remedy; no script failed; nothing is fetched from the
//! network; the page stays within its size budget. A screenshot is left
//! in `target/tmp/report-browser/` (a CI artifact, not committed).
//!
//! `scripts/test.sh` installs Debian's `chromium` when it is missing.

mod common;

use common::browser::{attr, headless, loaded_clean};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of a fixture run directory, to render or change.
fn fixture_copy(fixture: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rundir-v1")
        .join(fixture);
    let dir = tmp.path().join("run");
    common::copy_dir(&from, &dir);
    (tmp, dir)
}

/// `baton report DIR`, which must exit with `exit` (the run's verdict);
/// the report it wrote.
fn render(dir: &Path, exit: i32) -> PathBuf {
    let out = Command::new(assert_cmd::cargo::cargo_bin("baton"))
        .arg("report")
        .arg(dir)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(exit),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("report.html")
}

/// A fixture run, re-rendered by this baton into a copy.
fn rendered(fixture: &str, exit: i32) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = fixture_copy(fixture);
    let page = render(&dir, exit);
    (tmp, page)
}

/// The fixture's FAIL run, re-rendered.
fn fail_report() -> (tempfile::TempDir, PathBuf) {
    rendered("run-fail", 1)
}

/// A PASS run (the matrix's preStop-3s variant) on its first screen: the
/// verdict and that nothing failed, with no incident, no script error and
/// nothing fetched; the chart shows the whole run (there is nothing to
/// zoom to) and does not claim to open on incidents.
#[test]
fn the_first_screen_of_a_passing_run_says_nothing_failed() {
    let (_tmp, page) = rendered("matrix/preStop-3s", 0);
    let dom = loaded_clean(&page);
    let at = |needle: &str| {
        dom.find(needle)
            .unwrap_or_else(|| panic!("the page does not say {needle:?}"))
    };
    let order = [
        at(">PASS<"),
        at("0 of 1816 requests failed; every threshold held"),
        at("id=\"chart\""),
    ];
    assert!(order.is_sorted(), "{order:?}");
    assert!(
        !dom.contains("class=\"answer-incident"),
        "an incident in a PASS"
    );
    assert!(!dom.contains("opens on the incidents"));
    let button = &dom[dom.find("id=\"zoom-reset\"").expect("the zoom button")..];
    assert!(
        button[..button.find('>').unwrap()].contains("disabled"),
        "a PASS chart opened zoomed"
    );
}

#[test]
fn the_first_screen_of_a_failed_run_holds_the_answer_and_the_page_runs_clean() {
    let (_tmp, page) = fail_report();
    let html = std::fs::read_to_string(&page).unwrap();
    let bytes = html.len();
    assert!(
        bytes < 2_000_000,
        "report.html is {bytes} bytes (budget 2 MB)"
    );
    // Self-contained and clean: nothing loaded from elsewhere.
    let dom = loaded_clean(&page);
    let bottom = attr(&dom, "data-answer-bottom").expect("the page measured its answer");
    assert!(
        bottom <= 900,
        "the first incident's remedy ends {bottom} px down: below the first screen (900 px)"
    );
    // What the first screen says, in the order a person reads it.
    let at = |needle: &str| {
        dom.find(needle)
            .unwrap_or_else(|| panic!("the page does not say {needle:?}"))
    };
    let order = [
        at(">FAIL<"),
        at("201 of 1816 requests (11.1 %) failed between 5.59 s and 8.63 s"),
        at("proxies still sent new connections to Pods that were shutting down"),
        at("add a preStop sleep of at least"),
        at("id=\"chart\""),
    ];
    assert!(
        order.is_sorted(),
        "verdict, failures, cause, remedy, then the chart: {order:?}"
    );
    // The chart opens on the incidents: zoomed, the whole run one click
    // away (the button is enabled only when zoomed).
    let button = &dom[dom.find("id=\"zoom-reset\"").expect("the zoom button")..];
    let button = &button[..button.find('>').unwrap()];
    assert!(
        !button.contains("disabled"),
        "the chart opened on the whole run: {button}"
    );
    let height = attr(&dom, "data-page-height").expect("the page measured its height");
    eprintln!("report.html: {bytes} bytes, {height} px tall, answer ends at {bottom} px");
    // Failures come grouped by incident, a few shown and the rest folded:
    // the page stays a few screens tall (it was 19,147 px with every row
    // open).
    assert!(
        height <= 6 * 900,
        "the page is {height} px tall (budget 6 screens of 900 px)"
    );
    // A marker's link to a folded failure unfolds it.
    let folded = &html[html
        .find("<details class=\"more\"")
        .expect("folded failures")..];
    let id = regex::Regex::new(r#"<tr id="(f-\d+)""#)
        .unwrap()
        .captures(folded)
        .unwrap()[1]
        .to_string();
    let mut linked = page.clone().into_os_string();
    linked.push(format!("#{id}"));
    let out = headless(Path::new(&linked), &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<details class=\"more\" open"),
        "following #{id} leaves its rows folded"
    );

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/report-browser");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("report-fail.png");
    let out = headless(&page, &[&format!("--screenshot={}", shot.display())]);
    assert!(
        out.status.success() && shot.is_file(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fetch counter the first test relies on counts: a page that does
/// reach for the network (an image from loopback's discard port) is
/// blocked by the report's policy and counted.
#[test]
fn a_report_that_reaches_for_the_network_is_caught() {
    let (_tmp, page) = fail_report();
    let html = std::fs::read_to_string(&page).unwrap();
    let tampered = html.replacen(
        "<body>",
        "<body><img src=\"http://127.0.0.1:9/pixel.png\" alt=\"\"/>",
        1,
    );
    assert_ne!(tampered, html);
    std::fs::write(&page, tampered).unwrap();
    let out = headless(&page, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert_eq!(attr(&dom, "data-blocked-fetches"), Some(1), "{dom:.300}");
}

/// Loads `report.html` (next to it) in a frame `width` × `height` px of a
/// page whose script runs `probe` against the framed page once it loaded
/// (`w`: its window, `d`: its document) and returns what `probe` returns,
/// as text. A script error comes back as `error ...`.
fn framed(report: &Path, width: u32, height: u32, probe: &str) -> String {
    let frame = report.with_file_name("frame.html");
    std::fs::write(
        &frame,
        format!(
            r#"<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="report.html" width="{width}" height="{height}" style="border:0"></iframe>
<pre id="out">not probed</pre>
<script>
document.getElementById("f").addEventListener("load", function () {{
  setTimeout(function () {{
    var out = document.getElementById("out");
    try {{
      var w = document.getElementById("f").contentWindow, d = w.document;
      out.textContent = (function (w, d) {{ {probe} }})(w, d);
    }} catch (e) {{ out.textContent = "error " + e; }}
  }}, 300);
}});
</script></body></html>"#
        ),
    )
    .unwrap();
    let out = headless(&frame, &["--allow-file-access-from-files", "--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let at = dom.find("<pre id=\"out\">").expect("the frame page") + "<pre id=\"out\">".len();
    dom[at..at + dom[at..].find("</pre>").unwrap()].to_string()
}

/// Hovering the chart (a mouse move dispatched in the real browser, from
/// a page that frames the report) fills the one shared tooltip with that
/// instant's run-clock and wall-clock time, the bucket's requests by
/// outcome, latency, the versions answering, the cluster's ready
/// endpoints and Pods.
#[test]
fn hovering_the_chart_says_what_happened_at_that_instant() {
    let (_tmp, page) = fail_report();
    let tip = framed(
        &page,
        1440,
        2400,
        r#"var r = d.getElementById("chart").getBoundingClientRect();
      // The middle of the plot, level with the requests panel: the chart
      // opens on the incidents, so failures are there.
      var x = r.left + r.width * 0.6, y = r.top + r.height * 0.2;
      d.elementFromPoint(x, y).dispatchEvent(
        new w.MouseEvent("mousemove", {clientX: x, clientY: y, bubbles: true}));
      var tip = d.getElementById("tip");
      return "shown=" + (tip.style.display !== "none") + "\n" + tip.textContent;"#,
    );
    let lines: Vec<&str> = tip.lines().collect();
    assert_eq!(lines.first(), Some(&"shown=true"), "{tip}");
    let clock = regex::Regex::new(r"^\d+\.\d{3} s · \d\d:\d\d:\d\d\.\d{3} UTC$").unwrap();
    assert!(
        lines.get(1).is_some_and(|l| clock.is_match(l)),
        "no run-clock and wall-clock time first: {tip}"
    );
    let counts =
        regex::Regex::new(r"^\d+\.\d–\d+\.\d s: \d+ sent, \d+ ok, failed: [a-z_]+ \d+").unwrap();
    assert!(
        lines.iter().any(|l| counts.is_match(l)),
        "no requests by outcome: {tip}"
    );
    for needle in [
        "latency p50 ",
        "versions answering: 1.2",
        "ready endpoints ",
    ] {
        assert!(tip.contains(needle), "no {needle:?}: {tip}");
    }
}

/// At 390 px (a phone), the page does not scroll sideways (only the chart,
/// in its own box, and the failures table may), and the chart's visible
/// part holds the first failure.
#[test]
fn on_a_phone_only_the_chart_scrolls_sideways_and_it_shows_the_first_failure() {
    let (_tmp, page) = fail_report();
    let probe = framed(
        &page,
        390,
        900,
        r##"var h = d.documentElement, tick = d.querySelector("#chart line.fm").getBoundingClientRect();
      return h.scrollWidth + " " + h.clientWidth + " " + Math.round(tick.left);"##,
    );
    let n: Vec<i64> = probe
        .split(' ')
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{probe}")))
        .collect();
    let (page_w, view_w, tick_x) = (n[0], n[1], n[2]);
    assert!(
        page_w <= view_w,
        "the page is {page_w} px wide in a {view_w} px window"
    );
    assert!(
        (0..view_w).contains(&tick_x),
        "the first failure is drawn at {tick_x} px, outside the {view_w} px window"
    );
}

/// The FAIL run made long: after its rollout (in its first 10 s) the load
/// goes on at `rate` per second of plain successes from the new Pods for
/// `secs` seconds, as a ten-minute gate would run. `run.json` counts the
/// added requests (nothing lost, nothing invented).
fn long_report(rate: u64, secs: u64) -> (tempfile::TempDir, PathBuf, u64) {
    use std::io::Write as _;
    let (tmp, dir) = fixture_copy("run-fail");
    let csv = dir.join("requests.csv");
    let first = std::fs::read_to_string(&csv).unwrap();
    let seq0 = first.lines().count() as u64 - 1;
    let mut out =
        std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&csv).unwrap());
    let pods = [
        "web-server-7c5dcc8f57-b9w67",
        "web-server-7c5dcc8f57-2skrs",
        "web-server-7c5dcc8f57-h9xfs",
    ];
    let added = rate * secs;
    let gap = 1_000_000_000 / rate;
    for k in 0..added {
        let at = 10_000_000_000 + k * gap;
        writeln!(
            out,
            "{},{at},{},150,450,540,200,ok,,{},1.28.0",
            seq0 + k,
            at + 20_000,
            pods[(k % 3) as usize]
        )
        .unwrap();
    }
    out.flush().unwrap();
    let mut run: serde_json::Value = common::read_json(&dir.join("run.json"));
    let sent = run["sent"].as_u64().unwrap() + added;
    run["sent"] = sent.into();
    run["rows_written"] = sent.into();
    run["elapsed_ns"] = (10_000_000_000 + added * gap).into();
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    let page = render(&dir, 1);
    (tmp, page, sent)
}

/// A ten-minute run of 600,000 requests: the page stays a few megabytes
/// and a few screens, opens on the incident with the answer on the first
/// screen, and runs clean. Its size, height and the browser's time to load
/// it are printed (the README quotes them; no timed assertion).
#[test]
fn a_ten_minute_run_of_600_000_requests_stays_a_few_megabytes_and_screens() {
    let (_tmp, page, sent) = long_report(1_000, 600);
    assert!(sent >= 600_000);
    let bytes = std::fs::metadata(&page).unwrap().len();
    assert!(
        bytes < 5_000_000,
        "report.html is {bytes} bytes (budget 5 MB)"
    );
    let started = std::time::Instant::now();
    let dom = loaded_clean(&page);
    let load_s = started.elapsed().as_secs_f64();
    let bottom = attr(&dom, "data-answer-bottom").expect("the page measured its answer");
    assert!(bottom <= 900, "the answer ends {bottom} px down");
    let height = attr(&dom, "data-page-height").expect("the page measured its height");
    assert!(
        height <= 6 * 900,
        "the page is {height} px tall (budget 6 screens of 900 px)"
    );
    assert!(
        dom.contains(&format!("of {sent} requests")),
        "the headline does not count every request"
    );
    let button = &dom[dom.find("id=\"zoom-reset\"").expect("the zoom button")..];
    assert!(
        !button[..button.find('>').unwrap()].contains("disabled"),
        "the chart opened on the whole ten minutes, not the incident"
    );
    eprintln!(
        "report.html of {sent} requests: {bytes} bytes, {height} px tall, loaded by headless Chromium in {load_s:.2} s"
    );
}
