package ui

import (
	"html/template"
	"net/http"
	"strconv"
	"time"
)

var invalidLink = template.Must(template.New("link").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in link used or expired · Indigo</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/ui/style.css">
</head>
<body>
<header class="app-bar"><a class="app-brand" href="/">Indigo</a></header>
<main class="app-main">
<h1>This sign-in link can no longer be used</h1>
<p class="app-lead">A sign-in link works once, and for {{.TTL}} after it is made. This one was already used, has expired, or is incomplete.</p>
<p>If you opened it a moment ago, you may already be signed in: <a href="/settings/api-keys">go to the dashboard</a>.</p>
<p>Otherwise ask for a new link. Whoever runs this Indigo host makes one with:</p>
<pre class="app-example">indigo login-link --org &lt;organization id&gt; --email &lt;your email&gt;</pre>
<p class="app-lead"><code>indigo orgs list</code> shows the organization ids.</p>
</main>
</body>
</html>
`))

// WriteInvalidLink answers a used, expired or malformed sign-in link with a
// page that says so and how to get a new one (401, since it signs nobody in).
func WriteInvalidLink(w http.ResponseWriter, ttl time.Duration) {
	SecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = invalidLink.Execute(w, struct{ TTL string }{friendlyDuration(ttl)})
}

// friendlyDuration writes 15m0s as "15 minutes" and 2h0m0s as "2 hours".
func friendlyDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}
