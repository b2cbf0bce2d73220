// Package identity answers who a signed-in (non-key) request acts for: the
// user, the organization and the role. The built-in local provider keeps
// orgs and members in the database and signs users in with one-time links
// and an HttpOnly session cookie. A host embedding Indigo can supply its
// own Resolver (the resolveOrgId hook).
package identity

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/indigo-hq/indigo/core/audit"
	"github.com/indigo-hq/indigo/core/ids"
	"github.com/indigo-hq/indigo/core/internal/text"
	"github.com/indigo-hq/indigo/core/jsontime"
	"github.com/indigo-hq/indigo/db"
)

// Roles of an org member. Owners and admins manage keys.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// CookieName is the session cookie.
const CookieName = "indigo_session"

// Identity is a signed-in caller.
type Identity struct {
	UserID   string `json:"user_id"`
	Email    string `json:"email"`
	OrgID    string `json:"org_id"`
	Role     string `json:"role"`
	Operator bool   `json:"operator"`
	// CSRFToken must accompany state-changing requests made with the
	// session cookie; empty when the resolver needs no CSRF check.
	CSRFToken string `json:"csrf_token,omitempty"`
}

// CanManageKeys reports whether the role may manage the org's keys.
func (i *Identity) CanManageKeys() bool { return i.Role == RoleOwner || i.Role == RoleAdmin }

// Resolver resolves the identity of a request: nil, nil when nobody is
// signed in. It is the resolveOrgId hook: the org is part of the answer.
type Resolver interface {
	Resolve(r *http.Request) (*Identity, error)
}

// ResolverFunc adapts a function to Resolver, for hosts that embed Indigo.
type ResolverFunc func(r *http.Request) (*Identity, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(r *http.Request) (*Identity, error) { return f(r) }

// Org is an organization.
type Org struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	CreatedAt jsontime.Time `json:"created_at"`
}

// Local is the database-backed provider.
type Local struct {
	store      *db.Store
	now        func() time.Time
	sessionTTL time.Duration
	linkTTL    time.Duration
}

// NewLocal returns the local provider.
func NewLocal(store *db.Store, now func() time.Time, sessionTTL, linkTTL time.Duration) *Local {
	if now == nil {
		now = time.Now
	}
	return &Local{store: store, now: now, sessionTTL: sessionTTL, linkTTL: linkTTL}
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// CreateOrg adds an organization.
func (l *Local) CreateOrg(ctx context.Context, name string) (Org, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 {
		return Org{}, errors.New("org name must be 1 to 128 characters")
	}
	now := l.now()
	o := Org{ID: ids.New("org", now.UnixMilli()), Name: name, CreatedAt: jsontime.Time{Time: now.UTC()}}
	err := l.store.Tx(ctx, func(q db.Querier) error {
		if err := q.InsertOrg(ctx, db.InsertOrgParams{ID: o.ID, Name: name, CreatedAt: now.UnixMilli()}); err != nil {
			return err
		}
		return audit.Record(ctx, q, o.ID, audit.Actor{ID: "cli"}, "", "org.create", map[string]any{"name": name}, now.UnixMilli())
	})
	return o, err
}

// EnsureOrg records an organization that an external identity provider
// vouched for, so that keys can belong to it. It is a no-op when the org
// exists.
func (l *Local) EnsureOrg(ctx context.Context, id string) error {
	now := l.now().UnixMilli()
	return l.store.Tx(ctx, func(q db.Querier) error {
		n, err := q.EnsureOrg(ctx, db.EnsureOrgParams{ID: id, Name: id, CreatedAt: now})
		if err != nil || n == 0 {
			return err
		}
		return audit.Record(ctx, q, id, audit.Actor{ID: "identity-provider"}, "", "org.create", map[string]any{"name": id}, now)
	})
}

// LinkTTL is how long a sign-in link stays valid.
func (l *Local) LinkTTL() time.Duration { return l.linkTTL }

// Org returns one organization; ok is false when there is none with id.
func (l *Local) Org(ctx context.Context, id string) (o Org, ok bool, err error) {
	r, err := l.store.Q().GetOrg(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Org{}, false, nil
	}
	if err != nil {
		return Org{}, false, err
	}
	return Org{ID: r.ID, Name: r.Name, CreatedAt: jsontime.Time{Time: time.UnixMilli(r.CreatedAt).UTC()}}, true, nil
}

// ListOrgs returns every organization, oldest first.
func (l *Local) ListOrgs(ctx context.Context) ([]Org, error) {
	rows, err := l.store.Q().ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Org, len(rows))
	for i, r := range rows {
		out[i] = Org{ID: r.ID, Name: r.Name, CreatedAt: jsontime.Time{Time: time.UnixMilli(r.CreatedAt).UTC()}}
	}
	return out, nil
}

// LoginLink adds the member when needed (updating the role, and setting the
// operator flag when operator is true) and returns a one-time token.
func (l *Local) LoginLink(ctx context.Context, orgID, email, role string, operator bool) (string, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil && !strings.HasSuffix(email, "@localhost") {
		return "", fmt.Errorf("invalid email %q", email)
	}
	if addr != nil {
		email = addr.Address
	}
	email = strings.ToLower(email)
	switch role {
	case RoleOwner, RoleAdmin, RoleMember:
	default:
		return "", fmt.Errorf("role must be owner, admin or member, got %q", role)
	}
	token := ids.Token(32)
	now := l.now()
	err = l.store.Tx(ctx, func(q db.Querier) error {
		if _, err := q.GetOrg(ctx, orgID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("organization %q not found", orgID)
			}
			return err
		}
		u, err := q.GetUserByEmail(ctx, email)
		if errors.Is(err, sql.ErrNoRows) {
			u = db.SaasUser{ID: ids.New("usr", now.UnixMilli()), Email: email, Operator: operator}
			err = q.InsertUser(ctx, db.InsertUserParams{ID: u.ID, Email: email, Operator: operator, CreatedAt: now.UnixMilli()})
		} else if err == nil && operator && !u.Operator {
			err = q.SetUserOperator(ctx, db.SetUserOperatorParams{ID: u.ID, Operator: true})
		}
		if err != nil {
			return err
		}
		if err := q.UpsertMember(ctx, db.UpsertMemberParams{OrgID: orgID, UserID: u.ID, Role: role, CreatedAt: now.UnixMilli()}); err != nil {
			return err
		}
		if err := q.InsertLoginToken(ctx, db.InsertLoginTokenParams{
			TokenHash: hashToken(token), OrgID: orgID, UserID: u.ID,
			ExpiresAt: now.Add(l.linkTTL).UnixMilli(), CreatedAt: now.UnixMilli(),
		}); err != nil {
			return err
		}
		return audit.Record(ctx, q, orgID, audit.Actor{ID: "cli"}, "", "member.login_link",
			map[string]any{"user_id": u.ID, "role": role, "operator": operator}, now.UnixMilli())
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// ErrInvalidLink is a used, expired or unknown sign-in link.
var ErrInvalidLink = errors.New("sign-in link is invalid, used or expired")

// SignIn consumes a one-time token and opens a session. It returns the
// session token for the cookie.
func (l *Local) SignIn(ctx context.Context, token string) (string, error) {
	session := ids.Token(32)
	now := l.now()
	err := l.store.Tx(ctx, func(q db.Querier) error {
		row, err := q.ConsumeLoginToken(ctx, db.ConsumeLoginTokenParams{Now: sql.NullInt64{Int64: now.UnixMilli(), Valid: true}, TokenHash: hashToken(token)})
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidLink
		}
		if err != nil {
			return err
		}
		return q.InsertSession(ctx, db.InsertSessionParams{
			TokenHash: hashToken(session), OrgID: row.OrgID, UserID: row.UserID,
			CsrfToken: ids.Token(24), ExpiresAt: now.Add(l.sessionTTL).UnixMilli(), CreatedAt: now.UnixMilli(),
		})
	})
	if err != nil {
		return "", err
	}
	return session, nil
}

// Resolve reads the session cookie.
func (l *Local) Resolve(r *http.Request) (*Identity, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	row, err := l.store.Q().GetSession(r.Context(), db.GetSessionParams{TokenHash: hashToken(c.Value), Now: l.now().UnixMilli()})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Identity{UserID: row.UserID, Email: row.Email, OrgID: row.OrgID, Role: row.Role, Operator: row.Operator, CSRFToken: row.CsrfToken}, nil
}

// SignOut ends the session in the request's cookie.
func (l *Local) SignOut(ctx context.Context, r *http.Request) error {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return l.store.Q().DeleteSession(ctx, hashToken(c.Value))
}

// PruneSessions deletes expired sessions.
func (l *Local) PruneSessions(ctx context.Context) (int64, error) {
	return l.store.Q().DeleteExpiredSessions(ctx, l.now().UnixMilli())
}

// SessionCookie builds the cookie for a session token. It is Secure when the
// request came over TLS, directly or (trustProxy) through a proxy that says
// so in X-Forwarded-Proto.
func SessionCookie(r *http.Request, token string, ttl time.Duration, trustProxy bool) *http.Cookie {
	secure := r.TLS != nil || (trustProxy && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
	return &http.Cookie{
		Name: CookieName, Value: token, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
}

// Provisioned wraps the resolver of an external identity provider (a JWT
// issuer, a host's own function) so that each org it names is recorded
// once, on first sight, before keys are made for it.
func Provisioned(next Resolver, local *Local) Resolver {
	return &provisioned{next: next, local: local}
}

type provisioned struct {
	next  Resolver
	local *Local
	seen  sync.Map // org id → struct{}
}

func (p *provisioned) Resolve(r *http.Request) (*Identity, error) {
	id, err := p.next.Resolve(r)
	if err != nil || id == nil {
		return id, err
	}
	// The provider's answer is stored (the org here, the user in the audit
	// log) and queried by: an identity that is not text is no identity.
	if !text.Valid(id.UserID) || !text.Valid(id.OrgID) || !text.Valid(id.Email) || !text.Valid(id.Role) {
		return nil, ErrInvalidToken
	}
	if id.OrgID == "" {
		return id, nil
	}
	if _, ok := p.seen.Load(id.OrgID); !ok {
		if err := p.local.EnsureOrg(r.Context(), id.OrgID); err != nil {
			return nil, err
		}
		p.seen.Store(id.OrgID, struct{}{})
	}
	return id, nil
}
