package web

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/seedbank/seedbank/model"
)

// Replicated settings the site reads. Admins edit them on /admin/settings.
const (
	SettingRegistrationMode = "registration_mode"  // open | invite | closed
	SettingRatioRequired    = "ratio_required"     // e.g. "0.5"; 0 or unset turns ratio rules off
	SettingRatioGraceBytes  = "ratio_grace_bytes"  // bytes a member may download before the rule applies
	SettingRatioGracePeriod = "ratio_grace_period" // Go duration a member may stay below the ratio, e.g. "72h"
)

// extraRatioBelowSince is the user Extra field recording when (Unix ms) the
// site first saw the user below the required ratio.
const extraRatioBelowSince = "ratio_below_since"

// RatioRules are the site's ratio requirements.
type RatioRules struct {
	// Required is the minimum uploaded/downloaded; 0 turns the rules off.
	Required float64
	// GraceBytes may be downloaded before the rule applies.
	GraceBytes uint64
	// GracePeriod is how long a member may stay below before downloads stop.
	GracePeriod time.Duration
}

// RatioRules returns the rules from the replicated settings; bad values
// count as unset.
func (s *Server) RatioRules() RatioRules {
	var rr RatioRules
	if v, ok := s.store.Setting(SettingRatioRequired); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && !math.IsInf(f, 0) {
			rr.Required = f
		}
	}
	if v, ok := s.store.Setting(SettingRatioGraceBytes); ok {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			rr.GraceBytes = n
		}
	}
	if v, ok := s.store.Setting(SettingRatioGracePeriod); ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			rr.GracePeriod = d
		}
	}
	return rr
}

// ratioStatus says whether u is below the required ratio and since when.
type ratioStatus struct {
	Below    bool
	Stats    model.Stats
	Rules    RatioRules
	Ratio    float64
	Need     uint64    // bytes to upload to reach the required ratio
	Deadline time.Time // when downloads stop, if still below
	Recorded bool      // the below-since time is in the replicated user
}

func (s *Server) ratioStatus(u *model.User) ratioStatus {
	st := ratioStatus{Rules: s.RatioRules(), Stats: s.store.UserStats(u.ID)}
	st.Ratio = ratioOf(st.Stats)
	if st.Rules.Required <= 0 || u.Role != model.RoleMember || st.Stats.Downloaded <= st.Rules.GraceBytes {
		return st
	}
	want := uint64(math.Ceil(st.Rules.Required * float64(st.Stats.Downloaded)))
	if st.Stats.Uploaded >= want {
		return st
	}
	st.Below = true
	st.Need = want - st.Stats.Uploaded
	since := s.cfg.Now()
	if v, err := strconv.ParseInt(u.Extra[extraRatioBelowSince], 10, 64); err == nil && v > 0 {
		since = time.UnixMilli(v)
		st.Recorded = true
	}
	st.Deadline = since.Add(st.Rules.GracePeriod)
	return st
}

func ratioOf(st model.Stats) float64 {
	if st.Downloaded == 0 {
		return math.Inf(1)
	}
	return float64(st.Uploaded) / float64(st.Downloaded)
}

func formatRatio(r float64) string {
	if math.IsInf(r, 1) {
		return "∞"
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

func (st ratioStatus) explain() string {
	return fmt.Sprintf("Your ratio is %s (uploaded %s, downloaded %s); the site requires %s. Seed until you have uploaded %s more",
		formatRatio(st.Ratio), formatBytes(st.Stats.Uploaded), formatBytes(st.Stats.Downloaded),
		formatRatio(st.Rules.Required), formatBytes(st.Need))
}

// CanDownload reports whether u may download new .torrent files under the
// ratio rules, and if not, exactly what to upload to regain it. Staff and
// members within the grace bytes or grace period may always download.
func (s *Server) CanDownload(u model.User) (bool, string) {
	if !u.Enabled {
		return false, "Your account is disabled."
	}
	st := s.ratioStatus(&u)
	if !st.Below || s.cfg.Now().Before(st.Deadline) {
		return true, ""
	}
	return false, st.explain() + " to download new torrents again. Your grace period ended on " + st.Deadline.UTC().Format("2 Jan 2006 15:04 UTC") + "."
}

// ratioBanner returns the warning shown on every page to a member below
// the ratio, and records (once) when they fell below, or clears it when they
// recovered, so the grace period is the same on every node.
func (s *Server) ratioBanner(u *model.User) string {
	st := s.ratioStatus(u)
	_, recorded := u.Extra[extraRatioBelowSince]
	switch {
	case st.Below && !st.Recorded:
		s.setExtraAsync(u.ID, extraRatioBelowSince, strconv.FormatInt(s.cfg.Now().UnixMilli(), 10))
	case !st.Below && recorded:
		s.setExtraAsync(u.ID, extraRatioBelowSince, "")
	}
	if !st.Below {
		return ""
	}
	if ok, reason := s.CanDownload(*u); !ok {
		return reason
	}
	return st.explain() + " by " + st.Deadline.UTC().Format("2 Jan 2006 15:04 UTC") + ", or you will not be able to download new torrents."
}

// setExtraAsync sets one absent Extra field of a user (or deletes it when v
// is empty) in the background, at most one write per user and field at a time, and
// logs failures: it is bookkeeping, so a page never waits for it (nor for a
// cluster without a leader).
func (s *Server) setExtraAsync(uid uint64, k, v string) {
	key := strconv.FormatUint(uid, 10) + "/" + k
	if _, busy := s.bookkeeping.LoadOrStore(key, true); busy {
		return
	}
	go func() {
		defer s.bookkeeping.Delete(key)
		s.setExtra(uid, k, v)
	}()
}

func (s *Server) setExtra(uid uint64, k, v string) {
	fresh, err := s.store.User(uid)
	if err != nil {
		return
	}
	// Another request (or node) may have written it meanwhile: the first
	// recorded time wins.
	if _, had := fresh.Extra[k]; had == (v != "") {
		return
	}
	if fresh.Extra == nil {
		fresh.Extra = map[string]string{}
	}
	if v == "" {
		delete(fresh.Extra, k)
	} else {
		fresh.Extra[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.UpdateUser(ctx, fresh); err != nil {
		s.log.Warn("record user field", "uid", uid, "field", k, "err", err)
	}
}
