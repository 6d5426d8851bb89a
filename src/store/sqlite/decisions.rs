//! `DecisionStore` on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use super::rows::DecisionRow;
use crate::store::{DecisionRecord, DecisionStore, StoreResult, to_nanos};

#[async_trait]
impl DecisionStore for SqliteStore {
    async fn insert_decisions(&self, records: &[DecisionRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        // SQLite allows 32 766 bound values: 10 per row, so batches of at most 1 000 rows.
        let mut tx = self.writer.begin().await?;
        for chunk in records.chunks(1000) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO decisions (at, requester, image, operation, digest, allowed, rule, reasons, dry_run, trust_versions) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(to_nanos(r.at))
                    .push_bind(&r.requester)
                    .push_bind(&r.image)
                    .push_bind(&r.operation)
                    .push_bind(&r.digest)
                    .push_bind(r.allowed)
                    .push_bind(&r.rule)
                    .push_bind(serde_json::to_string(&r.reasons).unwrap_or_default())
                    .push_bind(r.dry_run)
                    .push_bind(r.trust_versions.to_string());
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn decisions(&self, image: Option<&str>, limit: i64) -> StoreResult<Vec<DecisionRecord>> {
        let rows = sqlx::query_as::<_, DecisionRow>(
            "SELECT at, requester, image, operation, digest, allowed, rule, reasons, dry_run, trust_versions
             FROM decisions WHERE (?1 IS NULL OR image = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(image)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(DecisionRecord::from).collect())
    }
}
