package apikey

import (
	"context"

	"github.com/indigo-hq/indigo/db"
)

// DayCount is calls on one UTC day, in all and by status class: success
// (below 400), client_error (4xx) and server_error (5xx).
type DayCount struct {
	Day         string `json:"day"`
	Count       int64  `json:"count"`
	Success     int64  `json:"success"`
	ClientError int64  `json:"client_error"`
	ServerError int64  `json:"server_error"`
}

// RouteCount is calls to one route with one status.
type RouteCount struct {
	Route  string `json:"route"`
	Status int64  `json:"status"`
	Count  int64  `json:"count"`
}

// Stats is a key's usage.
type Stats struct {
	KeyID      string       `json:"key_id"`
	Total      int64        `json:"total"`
	LastUsedAt *Time        `json:"last_used_at"`
	ByDay      []DayCount   `json:"by_day"`
	ByRoute    []RouteCount `json:"by_route"`
}

// Stats returns a key's calls by day and by route and status, from the
// daily roll-up that the request log writer maintains.
func (s *Service) Stats(ctx context.Context, orgID, id string) (Stats, error) {
	k, err := s.Get(ctx, orgID, id)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{KeyID: id, LastUsedAt: k.LastUsedAt, ByDay: []DayCount{}, ByRoute: []RouteCount{}}
	days, err := s.store.Q().KeyStatsByDay(ctx, db.KeyStatsByDayParams{OrgID: orgID, KeyID: id})
	if err != nil {
		return Stats{}, err
	}
	for _, d := range days {
		st.ByDay = append(st.ByDay, DayCount{Day: d.Day, Count: d.Count, Success: d.Success, ClientError: d.ClientError, ServerError: d.ServerError})
		st.Total += d.Count
	}
	routes, err := s.store.Q().KeyStatsByRoute(ctx, db.KeyStatsByRouteParams{OrgID: orgID, KeyID: id})
	if err != nil {
		return Stats{}, err
	}
	for _, r := range routes {
		st.ByRoute = append(st.ByRoute, RouteCount{Route: r.Route, Status: r.Status, Count: r.Count})
	}
	return st, nil
}
