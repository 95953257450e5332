package config

import (
	"flag"
	"time"

	"github.com/strangerchat/stranger/internal/moderation"
)

// ModerationLimits are the moderation service's settings besides
// --ban-threshold and --ban-duration (docs/security.md, "Moderation").
type ModerationLimits struct {
	// ReportRetention: reports and their evidence older than this are
	// deleted (--report-retention).
	ReportRetention time.Duration
	// EvidenceMaxBytes caps the stored evidence images in total
	// (--evidence-max-bytes).
	EvidenceMaxBytes int64
	// ReportBurst reports per reporter identity at once, then one more per
	// ReportEvery (--report-burst, --report-every).
	ReportBurst int
	ReportEvery time.Duration
	// AdminAuthFailures failed operator-token attempts per identity before
	// 429, one more allowed per minute (--admin-auth-failures).
	AdminAuthFailures int
}

func defaultModeration() ModerationLimits {
	return ModerationLimits{
		ReportRetention:   moderation.DefaultRetention,
		EvidenceMaxBytes:  moderation.DefaultEvidenceMaxBytes,
		ReportBurst:       moderation.DefaultReportBurst,
		ReportEvery:       moderation.DefaultReportEvery,
		AdminAuthFailures: moderation.DefaultAuthFailures,
	}
}

func moderationFlags(fs *flag.FlagSet, c *Config) {
	m := &c.Moderation
	fs.DurationVar(&m.ReportRetention, "report-retention", m.ReportRetention, "how long reports and their evidence images are kept before the sweep deletes them")
	fs.Int64Var(&m.EvidenceMaxBytes, "evidence-max-bytes", m.EvidenceMaxBytes, "total size of stored evidence images; past it the oldest dismissed reports' images are deleted, then uploads are refused (507)")
	fs.IntVar(&m.ReportBurst, "report-burst", m.ReportBurst, "reports one identity may file at once (then one per --report-every)")
	fs.DurationVar(&m.ReportEvery, "report-every", m.ReportEvery, "one more report per identity per this interval, after --report-burst")
	fs.IntVar(&m.AdminAuthFailures, "admin-auth-failures", m.AdminAuthFailures, "failed operator-token attempts per identity before 429 (one more per minute)")
}

func (c Config) validateModeration(bad func(flag, format string, args ...any)) {
	m := c.Moderation
	if m.ReportRetention <= 0 {
		bad("report-retention", "must be positive, e.g. 720h")
	}
	if m.EvidenceMaxBytes < moderation.MaxEvidenceBytes {
		bad("evidence-max-bytes", "must be at least %d (one image)", moderation.MaxEvidenceBytes)
	}
	if m.ReportBurst < 1 {
		bad("report-burst", "must be at least 1")
	}
	if m.ReportEvery <= 0 {
		bad("report-every", "must be positive")
	}
	if m.AdminAuthFailures < 1 {
		bad("admin-auth-failures", "must be at least 1")
	}
}

// ModerationConfig is the moderation.Config these flags make; the caller
// adds the Store, Bus, Clock, Log and Metrics.
func (c Config) ModerationConfig() moderation.Config {
	return moderation.Config{
		Threshold:        c.BanThreshold,
		Window:           c.BanDuration,
		Retention:        c.Moderation.ReportRetention,
		EvidenceMaxBytes: c.Moderation.EvidenceMaxBytes,
		ReportBurst:      c.Moderation.ReportBurst,
		ReportEvery:      c.Moderation.ReportEvery,
		AuthFailures:     c.Moderation.AdminAuthFailures,
	}
}
