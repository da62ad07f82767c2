package harness

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Counter reads a counter of the webhook's /metrics: the sum of the
// samples of name whose labels include every pair in labels. Tests use it
// to prove the webhook saw a request that it let through silently.
func (w *Webhook) Counter(ctx context.Context, name string, labels map[string]string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scraping %s: %w", w.metricsURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scraping %s: HTTP %d", w.metricsURL, resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		labelText, value, ok := strings.Cut(rest, "} ")
		if !ok || !hasLabels(labelText, labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// hasLabels says whether a Prometheus text-format label list such as
// `a="1",b="2"` has every pair of want. Label values here are plain words,
// so splitting on commas is enough.
func hasLabels(text string, want map[string]string) bool {
	got := map[string]string{}
	for pair := range strings.SplitSeq(text, ",") {
		if k, v, ok := strings.Cut(pair, "="); ok {
			got[k] = strings.Trim(v, `"`)
		}
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
