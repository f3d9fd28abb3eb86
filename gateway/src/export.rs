//! The export: applied links → Format 1 files per (app, Repro channel) → Repro's S3
//! auto-import. A file's rows, name and key are fixed in the store before the upload,
//! and it is marked uploaded only after the upload succeeded, so a crash in between
//! re-uploads the same object with the same content.

use std::collections::HashMap;
use std::sync::Arc;

use repro_line_bulk::s3::{Date, ImportType, KeySpec};

use crate::stopwatch::ExportStep;
use crate::store::{ExportFile, HEADER};
use crate::{now_ms, Shared};

/// The Format 1 bytes of a file: the last mapping of each LINE user ID wins, at the
/// place of its last row (one LINE ID twice in a file would be a conflict for Repro).
pub fn render(rows: &[(String, String)]) -> Vec<u8> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (i, (line, _)) in rows.iter().enumerate() {
        last.insert(line.as_str(), i);
    }
    let mut out = String::with_capacity(HEADER.len() + rows.len() * 48);
    out.push_str(HEADER);
    for (i, (line, user)) in rows.iter().enumerate() {
        if last.get(line.as_str()) == Some(&i) {
            out.push_str(line);
            out.push(',');
            out.push_str(&repro_line_bulk::rules::csv_quote(user));
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// The calendar date of `unix_ms` in `tz` (the folder Repro files the upload under).
pub fn local_date(unix_ms: u64, tz: &jiff::tz::TimeZone) -> Date {
    let offset_s = jiff::Timestamp::from_millisecond(unix_ms as i64)
        .map(|t| i64::from(tz.to_offset(t).seconds()))
        .unwrap_or(0);
    let local_s = (unix_ms / 1000) as i64 + offset_s;
    let (year, month, day) = repro_line_core::protocol::civil_from_days(local_s.div_euclid(86_400));
    Date {
        year: year as i32,
        month,
        day,
    }
}

/// One export pass (blocking: run on a blocking thread): claim pending rows into files,
/// then validate and upload every file not yet uploaded. `Err` says why S3 is failing.
pub(crate) fn run_once(shared: &Arc<Shared>) -> Result<usize, String> {
    let cfg = &shared.config;
    let tz = &shared.time_zone;
    let now = now_ms();
    let date = local_date(now, tz);
    let apps: HashMap<String, String> = cfg
        .apps
        .iter()
        .map(|a| (a.name.clone(), a.repro_app_id.clone()))
        .collect();
    let key_of = move |app: &str, channel: &str, name: &str| {
        let app_id = apps.get(app)?;
        repro_line_bulk::s3::object_key(&KeySpec {
            app_id,
            channel_id: channel,
            import_type: ImportType::Deliverable,
            date,
            file_name: name,
        })
        .ok()
    };
    shared
        .store
        .claim_files(
            &cfg.gateway_id,
            cfg.max_file_rows,
            cfg.max_file_bytes,
            now,
            Arc::new(key_of),
        )
        .map_err(|e| format!("store: {e}"))?;
    shared
        .store
        .upload_pending(&now_ms, &mut |file| upload_one(shared, file))
}

fn upload_one(shared: &Shared, file: &ExportFile) -> Result<(), String> {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let path = dir.path().join(&file.name);
    std::fs::write(&path, render(&file.rows)).map_err(|e| format!("temp file: {e}"))?;
    // The same validator as `repro-line csv validate`: never upload a file Repro would refuse.
    let opts = repro_line_bulk::ValidateOptions {
        threads: 1,
        max_bytes: shared.config.max_file_bytes.max(1024),
        ..repro_line_bulk::ValidateOptions::default()
    };
    let report = repro_line_bulk::validate_file(&path, &opts).map_err(|e| e.to_string())?;
    let timings = shared.store.timings();
    if let Some(t) = timings {
        t.export(ExportStep::Validate).time(started.elapsed());
    }
    if !report.valid {
        shared.metrics.export_failed();
        tracing::error!(file = %file.name, errors = report.errors, counts = ?report.counts, "export file failed validation; not uploaded");
        return Err(format!("export file {} failed validation", file.name));
    }
    let started = std::time::Instant::now();
    if let Err(e) = crate::s3::upload(&path, &file.s3_key, &shared.config.s3) {
        shared.metrics.export_failed();
        return Err(e);
    }
    if let Some(t) = timings {
        t.export(ExportStep::Upload).time(started.elapsed());
    }
    shared.metrics.file_uploaded();
    tracing::info!(file = %file.name, rows = file.rows.len(), key = %file.s3_key, "export file uploaded (marked next)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_mapping_wins_and_user_ids_are_quoted() {
        let rows = vec![
            ("Ua".to_owned(), "u1".to_owned()),
            ("Ub".to_owned(), "x,\"y\"".to_owned()),
            ("Ua".to_owned(), "u2".to_owned()),
        ];
        assert_eq!(
            String::from_utf8(render(&rows)).unwrap(),
            "line_user_id,user_id\nUb,\"x,\"\"y\"\"\"\nUa,u2\n"
        );
    }

    #[test]
    fn the_date_folder_follows_the_zone() {
        let tokyo = jiff::tz::TimeZone::get("Asia/Tokyo").unwrap();
        // 2026-11-28T20:00:00Z is already the 29th in Tokyo.
        let ms = 1_795_867_200_000 + 8 * 3_600_000;
        assert_eq!(local_date(ms, &tokyo).to_string(), "2026-11-29");
        assert_eq!(
            local_date(ms, &jiff::tz::TimeZone::UTC).to_string(),
            "2026-11-28"
        );
    }
}
