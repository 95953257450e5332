//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// axeSource is axe-core's browser build from web/node_modules (a dev
// dependency of the web client), injected into pages by the test: nothing
// is fetched from outside.
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("../../web/node_modules/axe-core/axe.min.js")
	return string(b), err
})

type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// checkAxe runs axe-core on the page as it is and fails the test for every
// violation, whatever its impact.
func checkAxe(t *testing.T, p *page, screen string) {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatalf("axe-core: %v (run npm ci in web/)", err)
	}
	if !eval[bool](p, `typeof window.axe !== 'undefined'`) {
		eval[bool](p, src+"\n;true")
	}
	out := eval[string](p, `axe.run(document, {resultTypes: ['violations']}).then((r) => JSON.stringify({
		passes: r.passes.length,
		violations: r.violations.map((v) => ({id: v.id, impact: v.impact ?? '', help: v.help,
			targets: v.nodes.slice(0, 4).map((n) => n.target.join(' '))}))}))`)
	var res struct {
		Passes     int            `json:"passes"`
		Violations []axeViolation `json:"violations"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("axe-core result: %v", err)
	}
	if res.Passes == 0 {
		t.Fatalf("%s, %s: axe-core checked nothing", p.name, screen)
	}
	t.Logf("%s, %s: axe-core: %d rules pass, %d violations", p.name, screen, res.Passes, len(res.Violations))
	for _, v := range res.Violations {
		t.Errorf("%s, %s: axe %s (%s): %s at %v", p.name, screen, v.ID, v.Impact, v.Help, v.Targets)
	}
}
