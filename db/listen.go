package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// KeyChangesChannel is the PostgreSQL NOTIFY channel of the key change feed.
const KeyChangesChannel = "indigo_key_changes"

// Listen wakes the caller whenever PostgreSQL notifies channel, over a
// dedicated connection that reconnects after errors. It returns when ctx
// ends. On SQLite it returns at once: the follower polls instead.
func (s *Store) Listen(ctx context.Context, channel string, wake chan<- struct{}) {
	if s.Engine != Postgres {
		return
	}
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, s.URL)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err == nil {
				// A change made while no one listened is found by this wake.
				select {
				case wake <- struct{}{}:
				default:
				}
				for {
					if _, err = conn.WaitForNotification(ctx); err != nil {
						break
					}
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
			_ = conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
