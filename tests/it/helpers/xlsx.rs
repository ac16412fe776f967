//! Workbooks read back by an independent reader: `openpyxl` (PyPI, pinned;
//! scripts/test.sh installs it into target/py).

use serde_json::Value;

use super::repo;

/// The workbook's sheets as `openpyxl` reads them: per sheet, its rows of
/// `[type, value]` cells (`str`, `int`/`float`, `datetime`, `NoneType`),
/// dates as ISO text.
pub fn openpyxl(file: &std::path::Path) -> Value {
    let python = repo().join("target/py/bin/python");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            r#"
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {}
for ws in wb.worksheets:
    out[ws.title] = {
        "rows": [[[type(c.value).__name__, c.value.isoformat() if hasattr(c.value, "isoformat") else c.value]
                  for c in row] for row in ws.iter_rows()],
        "widths": {k: d.width for k, d in ws.column_dimensions.items()},
    }
print(json.dumps(out, ensure_ascii=False))
"#,
        )
        .arg(file)
        .output()
        .expect("target/py/bin/python (scripts/test.sh installs openpyxl there)");
    assert!(
        out.status.success(),
        "openpyxl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `bytes` (an `.xlsx` an answer carried) kept as `target/test-shots/
/// report/NAME` and read back by [`openpyxl`].
pub fn openpyxl_bytes(bytes: &[u8], name: &str) -> Value {
    let dir = repo().join("target/test-shots/report");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    openpyxl(&file)
}
