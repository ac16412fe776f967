//! Issue 35: the exports Excel opens and the monthly report. A gateway on
//! a Redis seeded with tickets whose figures are worked out by hand below;
//! the `.xlsx` from the CLI and the API read back by `openpyxl` (PyPI,
//! pinned; scripts/test.sh installs it into target/py): Chinese headers,
//! dates as dates, numbers as numbers; the CSVs start with the UTF-8 BOM;
//! the statistics page and the monthly report in Chromium (screenshots
//! under target/test-shots/report, no English id visible) and the monthly
//! report printed to PDF (A4), its pages counted and its text read back by
//! poppler's `pdfinfo`/`pdftotext`.

use hotline::tickets::actions;
use hotline::tickets::model::{Category, Change};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::helpers::*;

/// The seeded month, November 2026 (Asia/Shanghai):
/// - A, 30 Nov 10:00: a lead, 签收 after 60 s by u1-officer (一组执行员, of
///   unit-1, 执行一组), 出警 after 400 s: a breach;
/// - B, 30 Nov 11:00: a lead, 签收 after 120 s by u1-officer, 出警 after 200 s;
/// - C, 30 Nov 12:00: a consultation, open.
///
/// The month before: D, 15 Oct 10:00, a lead, open.
/// So November: 3 tickets; leads 2, consultations 1; opened (held to the
/// five minutes) 2, breaches 1 (50 %); unit-1 2, none 1; 签收 median 60 s
/// (nearest rank of [60, 120]), 出警 median 200 s. October: 1 ticket.
async fn seed(store: &hotline::tickets::Store) -> String {
    let secs = |s: i64| SignedDuration::from_secs(s);
    let new = |i: usize, at: &str, category: Category| {
        let at: Timestamp = at.parse().unwrap();
        async move {
            let n = seed_created(store, &format!("exports-{i}"), category, at).await;
            seed_open(store, &n).await;
            (n, at)
        }
    };
    let mut breached = String::new();
    for (i, at, ack, out) in [
        (0, "2026-11-30T02:00:00Z", 60, 400),
        (1, "2026-11-30T03:00:00Z", 120, 200),
    ] {
        let (n, at) = new(i, at, Category::Lead).await;
        let who = "u1-officer";
        let a = actions::acknowledge(who, None, at + secs(ack), serde_json::json!({}));
        store.act(&n, &a).await.unwrap();
        let v = store.get(&n).await.unwrap().version;
        let go = actions::dispatch(who, v, vec![who.into()], None, at + secs(out));
        store.act(&n, &go).await.unwrap();
        if out > 300 {
            let breach = Change::new("gateway", "breach");
            store
                .change(&n, &breach, |r| r.dispatch.five_minute_breach = true)
                .await
                .unwrap();
            breached = n;
        }
    }
    new(2, "2026-11-30T04:00:00Z", Category::Consultation).await;
    new(3, "2026-10-15T02:00:00Z", Category::Lead).await;
    breached
}

/// The row of the 统计 sheet with `section` and `key` in its last columns.
fn figure<'a>(book: &'a Value, section: &str, key: &str) -> &'a Vec<Value> {
    book["统计"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap())
        .find(|r| r[3][1] == section && r[4][1] == key)
        .unwrap_or_else(|| panic!("no {section} {key} in {book}"))
}

fn cli(url: &str, args: &[&str]) -> std::process::Output {
    hotline_cli(url, &[&["report"], args].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_open_in_excel_and_the_monthly_report_prints() {
    // Seeded before the gateway starts, and taken off the paging schedule:
    // a gateway would page the open ones (days after they were received)
    // and change the figures between the CLI's workbook and the API's.
    let redis = Redis::start("everysec").await;
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let breached = seed(&store).await;
    let mut c = store.connection();
    let _: () = redis::cmd("DEL")
        .arg("hotline:paging:due")
        .query_async(&mut c)
        .await
        .unwrap();
    let dir = repo().join("target/test-shots/report");
    std::fs::create_dir_all(&dir).unwrap();
    let url = redis.url();

    // The CLI's workbook.
    let file = dir.join("stats-cli.xlsx");
    let _ = std::fs::remove_file(&file);
    let xlsx = [
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--format",
        "xlsx",
        "--output",
    ];
    let out = cli(&url, &xlsx);
    assert!(!out.status.success(), "--output without a file");
    let out = cli(&url, &[&xlsx[..], &[file.to_str().unwrap()]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let book = openpyxl(&file);
    let head: Vec<&Value> = book["统计"]["rows"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c[1])
        .collect();
    assert_eq!(head, ["栏目", "项目", "数值", "section", "key"]);
    assert_eq!(
        figure(&book, "range", "from")[2],
        serde_json::json!(["datetime", "2026-11-01T00:00:00"])
    );
    assert_eq!(
        figure(&book, "tickets", "all")[2],
        serde_json::json!(["int", 3])
    );
    let lead = figure(&book, "category", "lead");
    assert_eq!(
        (&lead[1][1], &lead[2][1]),
        (&Value::from("执行线索"), &Value::from(2))
    );
    let unit = figure(&book, "unit", "unit-1");
    assert_eq!(
        (&unit[1][1], &unit[2][1]),
        (&Value::from("执行一组"), &Value::from(2))
    );
    assert_eq!(figure(&book, "unit", "none")[1][1], "未签收");
    assert_eq!(figure(&book, "five_minute", "breaches")[2][1], 1);
    assert_eq!(
        figure(&book, "five_minute", "rate")[2],
        serde_json::json!(["float", 0.5])
    );
    assert_eq!(figure(&book, "seconds_median", "acknowledged")[2][1], 60);
    assert_eq!(figure(&book, "seconds_median", "dispatched")[2][1], 200);
    // The breach, its time as Qingdao's clock read it, its officer by name.
    let b = &book["超时工单"]["rows"][1];
    assert_eq!(b[0][1], breached.as_str());
    assert_eq!(b[1], serde_json::json!(["datetime", "2026-11-30T10:00:00"]));
    assert_eq!(
        (&b[2][1], &b[3][1], &b[4][1]),
        (
            &Value::from("执行线索"),
            &Value::from("已出警"),
            &Value::from("一组执行员")
        )
    );
    assert_eq!(b[5], serde_json::json!(["float", 6.7]), "400 s in minutes");
    assert!(
        book["统计"]["widths"]["B"].as_f64().unwrap() > 20.0,
        "{}",
        book["统计"]["widths"]
    );
    // 30 November: 3 calls, 2 leads.
    let days = book["每日"]["rows"].as_array().unwrap();
    assert_eq!(days.len(), 31, "a header and the 30 days");
    assert_eq!(
        days[30],
        serde_json::json!([["datetime", "2026-11-30T00:00:00"], ["int", 3], ["int", 2]])
    );

    // The CLI's CSV starts with the BOM.
    let out = cli(
        &url,
        &[
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "csv",
        ],
    );
    assert!(
        out.stdout
            .starts_with(b"\xEF\xBB\xBF\xE6\xA0\x8F\xE7\x9B\xAE,"),
        "BOM, then 栏目"
    );
    // A bad month names the flag.
    let out = cli(&url, &["--month", "2026-13"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("--month \"2026-13\""));
    // The monthly report to standard output without --output, to a file with it.
    let out = cli(&url, &["--month", "2026-11"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with("<!doctype html>") && page.contains("（2026年11月）"),
        "{page}"
    );
    let monthly = dir.join("monthly-cli.html");
    let out = cli(
        &url,
        &["--month", "2026-11", "--output", monthly.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&monthly).unwrap();
    assert!(html.contains("<tr data-figure=\"tickets.all\"><td>接报</td><td>总数</td><td class=\"n\">3</td><td class=\"n\">1</td><td class=\"n\"><span class=\"up\">+2</span></td></tr>"), "{html}");
    assert!(
        html.contains(&format!(
            "<td>{breached}</td><td>2026-11-30 10:00:00</td><td>执行线索</td>"
        )),
        "{html}"
    );

    // The API: the same workbook, the CSV with its BOM, bad input named.
    let gw = Gateway::start_with(settings(), redis).await;
    let api = Api::new(&gw);
    let director = api.logged_in(&gw.store, &["m-chen"]).await.remove(0);
    let (s, kind, body) = api
        .bytes(
            "/stats?from=2026-11-01&to=2026-11-30&format=xlsx",
            &director,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        kind,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let file = dir.join("stats-api.xlsx");
    std::fs::write(&file, &body).unwrap();
    let api_book = openpyxl(&file);
    assert_eq!(api_book["统计"]["rows"], book["统计"]["rows"]);
    let (s, _, body) = api
        .bytes("/stats?from=2026-11-01&to=2026-11-30&format=csv", &director)
        .await;
    assert_eq!(s, 200);
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "the CSV's BOM");
    for (q, says) in [
        (
            "/stats?from=2026-11-01&to=2026-11-30&format=pdf",
            "format \"pdf\"",
        ),
        ("/stats/monthly?month=2026-1", "month \"2026-1\""),
        ("/stats/monthly", "month"),
    ] {
        let (s, b) = api.call("GET", q, Some(&director), None).await;
        assert_eq!(s, 400, "{q}: {b}");
        assert!(b["message"].as_str().unwrap().contains(says), "{q}: {b}");
    }

    // Chromium: the page and the report, no English id, printed to PDF.
    let pdf = dir.join("monthly.pdf");
    let _ = std::fs::remove_file(&pdf);
    let out = {
        let _one = CHROMIUM.lock().await;
        tokio::process::Command::new("node")
            .arg(repo().join("tests/browser/report.mjs"))
            .args(["--base", &format!("http://{}", gw.http), "--member", "m-chen", "--pin", "112233"])
            .args(["--shots", dir.to_str().unwrap(), "--from", "2026-11-01", "--to", "2026-11-30"])
            .args(["--month", "2026-11", "--pdf", pdf.to_str().unwrap()])
            .args(["--english", "lead,consultation,violence,dispatched,acknowledged,open,intake,none,unit-1,u1-officer,m-chen,center"])
            .kill_on_drop(true)
            .output()
            .await
            .expect("node runs (Debian's nodejs)")
    };
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("DONE"),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = std::process::Command::new("pdfinfo")
        .arg(&pdf)
        .output()
        .expect("pdfinfo (poppler-utils)");
    let info = String::from_utf8_lossy(&info.stdout);
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{info}"));
    assert!(
        (2..=8).contains(&pages),
        "the report on 2 to 8 A4 pages: {pages}"
    );
    // Chromium's A4: 595.92 × 842.88 pt, which pdfinfo names.
    assert!(info.contains("(A4)"), "A4: {info}");
    let text = std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for want in [
        "执行指挥中心工作月报",
        breached.as_str(),
        "一组执行员",
        "五分钟时限",
    ] {
        assert!(text.contains(want), "{want} in the PDF's text:\n{text}");
    }
    gw.stop().await;
}
