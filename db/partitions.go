package db

import (
	"context"
	"fmt"
	"time"
)

// dayMS is one day in the request log's milliseconds.
const dayMS = int64(24 * time.Hour / time.Millisecond)

// EnsureLogPartitions makes the request log's daily partitions on
// PostgreSQL from the day of now through `ahead` days after it, so that
// rows land in their day and not in the default partition. It reports how
// many it made; on SQLite, which keeps one table, it does nothing.
func (s *Store) EnsureLogPartitions(ctx context.Context, now time.Time, ahead int) (int64, error) {
	if s.Engine != Postgres {
		return 0, nil
	}
	var made int64
	day := now.UnixMilli() / dayMS * dayMS
	for i := 0; i <= ahead; i++ {
		from := day + int64(i)*dayMS
		name := logPartition(from)
		var exists bool
		if err := s.DB.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
			return made, err
		}
		if exists {
			continue
		}
		if err := s.addLogPartition(ctx, name, from); err != nil {
			return made, fmt.Errorf("request log partition %s: %w", name, err)
		}
		made++
	}
	return made, nil
}

// addLogPartition makes one day's partition, moving into it the rows of
// that day that the default partition took meanwhile (PostgreSQL refuses
// a partition whose rows the default partition holds). Names and bounds are
// computed here, never taken from input.
func (s *Store) addLogPartition(ctx context.Context, name string, from int64) error {
	return s.Exclusive(ctx, "log-partitions", func() error {
		tx, err := s.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil || exists {
			return err
		}
		for _, q := range []string{
			fmt.Sprintf(`CREATE TABLE %s (LIKE saas_api_request_logs)`, name),
			fmt.Sprintf(`WITH moved AS (DELETE FROM saas_api_request_logs_default WHERE created_at >= %d AND created_at < %d RETURNING *)
INSERT INTO %s SELECT * FROM moved`, from, from+dayMS, name),
			fmt.Sprintf(`ALTER TABLE saas_api_request_logs ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)`, name, from, from+dayMS),
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
}

// DropLogPartitionsBefore drops the request log's daily partitions that end
// at or before `before` (whole days past retention), on PostgreSQL; rows of
// a partly retained day and of the default partition are left to
// PruneRequestLogs. It reports the rows dropped.
func (s *Store) DropLogPartitionsBefore(ctx context.Context, before int64) (int64, error) {
	if s.Engine != Postgres {
		return 0, nil
	}
	rows, err := s.DB.QueryContext(ctx, `
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'saas_api_request_logs'::regclass`)
	if err != nil {
		return 0, err
	}
	type part struct {
		name string
		to   int64
	}
	var old []part
	for rows.Next() {
		var name, bound string
		if err := rows.Scan(&name, &bound); err != nil {
			rows.Close()
			return 0, err
		}
		var from, to int64
		if _, err := fmt.Sscanf(bound, "FOR VALUES FROM ('%d') TO ('%d')", &from, &to); err != nil {
			continue // the default partition
		}
		if to <= before {
			old = append(old, part{name, to})
		}
	}
	rows.Close()
	var dropped int64
	for _, p := range old {
		var n int64
		if err := s.DB.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %s`, p.name)).Scan(&n); err != nil {
			return dropped, err
		}
		if _, err := s.DB.ExecContext(ctx, fmt.Sprintf(`DROP TABLE %s`, p.name)); err != nil {
			return dropped, err
		}
		dropped += n
	}
	return dropped, nil
}

func logPartition(fromMS int64) string {
	return "saas_api_request_logs_p" + time.UnixMilli(fromMS).UTC().Format("20060102")
}
