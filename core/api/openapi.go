package api

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/indigo-hq/indigo/core/apikey"
)

func promHandler(m *Metrics) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Doc describes a route in the OpenAPI document.
type Doc struct {
	OperationID string
	Summary     string
	Request     string // component schema name of the body, "" for none
	Status      int    // success status (200 when 0)
	Response    string // component schema name of the success body
}

var (
	docMe           = Doc{"getMe", "The calling key: org, id, name, scopes, status and expiry", "", 200, "Me"}
	docScopes       = Doc{"getScopes", "Every registered scope, also grouped by module", "", 200, "ScopeList"}
	docVerify       = Doc{"verifyKey", "Verify a key of the caller's org (counts toward its limits)", "VerifyRequest", 200, "VerifyResponse"}
	docListKeys     = Doc{"listKeys", "List the org's keys, newest first", "", 200, "KeyList"}
	docCreateKey    = Doc{"createKey", "Create a key; the plaintext is returned once", "CreateKeyRequest", 201, "CreateKeyResponse"}
	docGetKey       = Doc{"getKey", "Get one key", "", 200, "KeyEnvelope"}
	docUpdateKey    = Doc{"updateKey", "Rename, enable or disable, and change metadata, limits or expiry", "UpdateKeyRequest", 200, "KeyEnvelope"}
	docUpdateScopes = Doc{"updateScopes", "Replace a key's scopes (null: superkey)", "ScopesRequest", 200, "KeyEnvelope"}
	docRoll         = Doc{"rollKey", "Roll a key: a successor now, the old key expires after the grace", "RollRequest", 201, "CreateKeyResponse"}
	docRevoke       = Doc{"revokeKey", "Revoke a key at once", "", 200, "Revoked"}
	docStats        = Doc{"getKeyStats", "A key's calls by day and by route and status", "", 200, "KeyStats"}
)

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func obj(required []string, props map[string]any) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func nullable(t string) map[string]any { return map[string]any{"type": []string{t, "null"}} }

func nullableRef(name string) map[string]any {
	return map[string]any{"oneOf": []any{ref(name), map[string]any{"type": "null"}}}
}

var (
	str         = map[string]any{"type": "string"}
	integer     = map[string]any{"type": "integer"}
	boolean     = map[string]any{"type": "boolean"}
	timeStr     = map[string]any{"type": "string", "format": "date-time"}
	timeOrNil   = map[string]any{"type": []string{"string", "null"}, "format": "date-time"}
	strList     = map[string]any{"type": "array", "items": str}
	scopesOrNil = map[string]any{"type": []string{"array", "null"}, "items": str,
		"description": "null: a superkey with every scope; []: no scope at all"}
)

func schemas() map[string]any {
	keyFields := []string{"id", "org_id", "name", "prefix", "last4", "scopes", "status", "enabled", "metadata", "rate_limit",
		"remaining", "refill", "expires_at", "last_used_at", "created_at", "created_by", "revoked_at"}
	page := func(item string, field string) map[string]any {
		return obj([]string{field, "next_cursor"}, map[string]any{
			field: map[string]any{"type": "array", "items": ref(item)}, "next_cursor": nullable("string")})
	}
	return map[string]any{
		"Error": obj([]string{"error"}, map[string]any{"error": obj([]string{"code", "message"}, map[string]any{
			"code": map[string]any{"type": "string", "description": errorCodesDoc}, "message": str})}),
		"RateLimit": obj([]string{"limit", "window_seconds"}, map[string]any{
			"limit": map[string]any{"type": "integer", "minimum": 1}, "window_seconds": map[string]any{"type": "integer", "minimum": 1}}),
		"Refill": obj([]string{"amount", "interval_seconds"}, map[string]any{
			"amount": map[string]any{"type": "integer", "minimum": 1}, "interval_seconds": map[string]any{"type": "integer", "minimum": 1, "maximum": apikey.MaxSeconds}}),
		"Key": obj(keyFields, map[string]any{
			"id": str, "org_id": str, "name": str, "prefix": str, "last4": map[string]any{"type": "string", "minLength": 4, "maxLength": 4},
			"scopes": scopesOrNil, "status": map[string]any{"type": "string", "enum": []string{"active", "expiring", "expired", "revoked"}},
			"enabled": boolean, "metadata": map[string]any{"type": "object"}, "rate_limit": nullableRef("RateLimit"),
			"remaining": nullable("integer"), "refill": nullableRef("Refill"), "expires_at": timeOrNil,
			"last_used_at": timeOrNil, "created_at": timeStr, "created_by": str, "revoked_at": timeOrNil,
		}),
		"KeyEnvelope": obj([]string{"key"}, map[string]any{"key": ref("Key")}),
		"KeyList":     page("Key", "keys"),
		"CreateKeyRequest": obj([]string{"name"}, map[string]any{
			"name": str, "scopes": scopesOrNil, "expires_at": timeOrNil, "expires_in_seconds": map[string]any{"type": []string{"integer", "null"}, "minimum": 1, "maximum": apikey.MaxSeconds},
			"rate_limit": nullableRef("RateLimit"), "remaining": nullable("integer"), "refill": nullableRef("Refill"),
			"metadata": map[string]any{"type": []string{"object", "null"}},
			"prefix":   map[string]any{"type": "string", "pattern": "^[a-z][a-z0-9_]{1,15}$"},
		}),
		"CreateKeyResponse": obj([]string{"key", "raw_key", "warning"}, map[string]any{
			"key": ref("Key"), "raw_key": str, "warning": str,
			"previous": obj([]string{"id", "status", "expires_at"}, map[string]any{"id": str, "status": str, "expires_at": timeOrNil}),
		}),
		"UpdateKeyRequest": obj(nil, map[string]any{
			"name": str, "enabled": boolean, "metadata": map[string]any{"type": []string{"object", "null"}},
			"rate_limit": nullableRef("RateLimit"), "remaining": nullable("integer"), "refill": nullableRef("Refill"), "expires_at": timeOrNil,
		}),
		"ScopesRequest": obj([]string{"scopes"}, map[string]any{"scopes": scopesOrNil}),
		"RollRequest":   obj(nil, map[string]any{"grace_seconds": map[string]any{"type": "integer", "minimum": 0, "maximum": apikey.MaxSeconds}}),
		"Revoked":       obj([]string{"revoked"}, map[string]any{"revoked": map[string]any{"type": "boolean", "const": true}}),
		"Me": obj([]string{"org_id", "key_id", "name", "scopes", "status", "expires_at"}, map[string]any{
			"org_id": str, "key_id": str, "name": str, "scopes": scopesOrNil, "status": str, "expires_at": timeOrNil}),
		"Scope": obj([]string{"id", "label", "module"}, map[string]any{"id": str, "label": str, "module": str}),
		"ScopeList": obj([]string{"scopes", "groups"}, map[string]any{
			"scopes": map[string]any{"type": "array", "items": ref("Scope")},
			"groups": map[string]any{"type": "array", "items": obj([]string{"module", "scopes"}, map[string]any{
				"module": str, "scopes": map[string]any{"type": "array", "items": ref("Scope")}})},
		}),
		"KeyStats": obj([]string{"key_id", "total", "last_used_at", "by_day", "by_route"}, map[string]any{
			"key_id": str, "total": integer, "last_used_at": timeOrNil,
			"by_day": map[string]any{"type": "array", "items": obj([]string{"day", "count", "success", "client_error", "server_error"}, map[string]any{"day": str, "count": integer, "success": integer, "client_error": integer, "server_error": integer})},
			"by_route": map[string]any{"type": "array", "items": obj([]string{"route", "status", "count"},
				map[string]any{"route": str, "status": integer, "count": integer})},
		}),
		"VerifyRequest": obj([]string{"key"}, map[string]any{"key": str, "scopes": strList}),
		"VerifyResponse": obj([]string{"valid", "code", "key_id", "org_id", "scopes", "remaining", "rate_limit"}, map[string]any{
			"valid": boolean,
			"code": map[string]any{"type": "string", "enum": []string{"valid", "not_found", "disabled", "expired", "revoked",
				"rate_limited", "quota_exceeded", "insufficient_scope"}},
			"key_id": nullable("string"), "org_id": nullable("string"), "scopes": scopesOrNil, "remaining": nullable("integer"),
			"rate_limit": map[string]any{"oneOf": []any{map[string]any{"type": "null"}, obj([]string{"limit", "remaining", "reset"},
				map[string]any{"limit": integer, "remaining": integer, "reset": integer})}},
		}),
		"AdminKeyList": page("Key", "keys"),
		"LogEntry": obj([]string{"id", "request_id", "org_id", "key_id", "caller", "method", "route", "status", "latency_ms", "time"}, map[string]any{
			"id": integer, "request_id": str, "org_id": str, "key_id": str,
			"caller": map[string]any{"type": "string", "enum": []string{"key", "session"}, "description": "key: an API key; session: a signed-in person (key_id is empty)"},
			"method": str, "route": str, "status": integer,
			"latency_ms": map[string]any{"type": "number", "format": "double"}, "time": timeStr}),
		"LogList": page("LogEntry", "logs"),
		"AuditEntry": obj([]string{"id", "org_id", "actor", "key_id", "action", "source_ip", "details", "time"}, map[string]any{
			"id": integer, "org_id": str, "actor": str, "key_id": nullable("string"), "action": str, "source_ip": str,
			"details": map[string]any{"type": "object"}, "time": timeStr}),
		"AuditList":      page("AuditEntry", "audit"),
		"ModuleResponse": map[string]any{"description": "Whatever the module answers (JSON)"},
		"Session": obj([]string{"user_id", "email", "org_id", "role", "operator"}, map[string]any{
			"user_id": str, "email": str, "org_id": str, "org_name": str, "role": str, "operator": boolean, "csrf_token": str,
			"default_rate_limit": nullableRef("RateLimit")}),
	}
}

// errorCodesDoc names the stable codes that any route may answer, beside
// those of its own.
const errorCodesDoc = "A stable code. Any route may answer 400 invalid_text: a JSON string " +
	"at any depth, a path segment, a query parameter or the Idempotency-Key header that is " +
	"not valid UTF-8 or holds a NUL character (raw or escaped as \\u0000; an unpaired " +
	"surrogate escape such as \\ud800 is refused too)."

func errorResponses(codes ...int) map[string]any {
	out := map[string]any{}
	for _, c := range codes {
		out[strconv.Itoa(c)] = map[string]any{"description": http.StatusText(c),
			"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
	}
	return out
}

func operation(d Doc, params []any, security []any, errs []int) map[string]any {
	status := d.Status
	if status == 0 {
		status = 200
	}
	resp := errorResponses(errs...)
	resp[strconv.Itoa(status)] = map[string]any{"description": http.StatusText(status),
		"content": map[string]any{"application/json": map[string]any{"schema": ref(d.Response)}}}
	op := map[string]any{"operationId": d.OperationID, "summary": d.Summary, "responses": resp, "security": security}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if d.Request != "" {
		op["requestBody"] = map[string]any{"required": true,
			"content": map[string]any{"application/json": map[string]any{"schema": ref(d.Request)}}}
	}
	return op
}

func queryParam(name, desc string, schema map[string]any) map[string]any {
	return map[string]any{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
}

// OpenAPI builds the OpenAPI 3.1 document from the mounted routes.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]map[string]any{}
	add := func(path, method string, op map[string]any) {
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = op
	}
	pageParams := []any{
		queryParam("limit", "page size, 1 to 200 (default 50)", map[string]any{"type": "integer", "minimum": 1}),
		queryParam("cursor", "next_cursor of the previous page of the same list; anything else is a 400 invalid_cursor", str),
	}
	for _, rt := range s.routes {
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": str})
		}
		if rt.Method == "GET" && strings.HasSuffix(rt.Doc.Response, "List") && rt.Doc.Response != "ScopeList" {
			params = append(params, pageParams...)
		}
		security := []any{map[string]any{"bearerKey": []string{}}}
		if rt.Session {
			security = append(security, map[string]any{"session": []string{}})
		}
		errs := []int{400, 401, 403, 404, 409, 422, 429, 503}
		if rt.Cost > 0 {
			errs = append(errs, 402)
		}
		op := operation(rt.Doc, params, security, errs)
		if len(rt.Scopes) > 0 {
			op["x-indigo-scopes"] = rt.Scopes
		}
		add(V2Prefix+rt.Path, rt.Method, op)
	}
	for _, rt := range s.v1routes {
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": str})
		}
		op := operation(Doc{OperationID: "v1_" + rt.Module + "_" + operationSuffix("GET", rt.Path),
			Summary: "Read-only v1 route of module " + rt.Module, Response: "ModuleResponse"},
			params, []any{map[string]any{"v1Key": []string{}}}, []int{400, 401, 404, 405})
		add(V1Prefix+rt.Path, "GET", op)
	}
	adminParams := append([]any{
		queryParam("org_id", "only this organization", str),
		queryParam("key_id", "only this key", str),
		queryParam("since", "from this time (RFC 3339)", timeStr),
		queryParam("until", "before this time (RFC 3339)", timeStr),
	}, pageParams...)
	op := []any{map[string]any{"session": []string{}}}
	add("/api/admin/keys", "GET", adminOperation(Doc{"adminListKeys", "Keys across organizations (operators)", "", 200, "AdminKeyList"},
		slices.Concat(adminParams, []any{queryParam("status", "active, expiring, expired or revoked", str)})))
	add("/api/admin/logs", "GET", adminOperation(Doc{"adminGetLogs", "Request logs across organizations (operators)", "", 200, "LogList"},
		slices.Concat(adminParams, []any{queryParam("route", "route template, e.g. /api/v2/me", str), queryParam("status", "HTTP status", integer),
			queryParam("caller", "key: calls with an API key; session: calls by signed-in people", map[string]any{"type": "string", "enum": []string{"key", "session"}})})))
	add("/api/admin/audit", "GET", adminOperation(Doc{"adminGetAudit", "The audit log across organizations (operators)", "", 200, "AuditList"},
		slices.Concat(adminParams, []any{queryParam("action", "e.g. key.revoke", str)})))
	add("/api/session", "GET", operation(Doc{"getSession", "The signed-in member and the CSRF token", "", 200, "Session"}, nil, op, []int{400, 401}))

	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Indigo core-api", "version": "2.0.0",
			"description": "Organization-scoped API keys and the authenticated, scoped, rate-limited API v2."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas(),
			"securitySchemes": map[string]any{
				"bearerKey": map[string]any{"type": "http", "scheme": "bearer", "description": "An Indigo API key"},
				"v1Key":     map[string]any{"type": "http", "scheme": "bearer", "description": "The global v1 key"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": "indigo_session",
					"description": "A signed-in member; state-changing requests also need the X-CSRF-Token header"},
			},
		},
	}
}

// adminOperation documents an operator view: a signed-in operator only,
// and a 403 not_operator for a known caller that is not one.
func adminOperation(d Doc, params []any) map[string]any {
	op := operation(d, params, []any{map[string]any{"session": []string{}}}, []int{400, 401, 403})
	op["responses"].(map[string]any)["403"].(map[string]any)["description"] = "not_operator: a valid API key (a superkey " +
		"included: keys never read the admin views) or a session without the operator flag"
	return op
}

// operationSuffix names an operation after its method and path, for routes
// that modules declare without a name.
func operationSuffix(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(path, "/") {
		part = strings.Trim(part, "{}")
		if part == "" {
			continue
		}
		b.WriteByte('_')
		for _, c := range part {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
				b.WriteRune(c)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

// ModuleDoc is the document entry of a route a module serves.
func ModuleDoc(module, method, path string) Doc {
	return Doc{OperationID: module + "_" + operationSuffix(method, path),
		Summary: method + " " + path + " (module " + module + ")", Response: "ModuleResponse"}
}
