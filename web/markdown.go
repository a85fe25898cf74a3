package web

import (
	"bytes"
	"html/template"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

var (
	mdOnce   sync.Once
	mdConv   goldmark.Markdown
	mdPolicy *bluemonday.Policy
)

// renderMarkdown turns a dataset description into safe HTML: goldmark
// (GitHub-flavoured tables, strikethrough, autolinks; raw HTML is dropped
// by goldmark's default), then bluemonday's user-content policy, with
// links marked nofollow and opened without a referrer.
func renderMarkdown(src string) template.HTML {
	mdOnce.Do(func() {
		mdConv = goldmark.New(goldmark.WithExtensions(extension.GFM))
		p := bluemonday.UGCPolicy()
		p.RequireNoFollowOnLinks(true)
		p.RequireNoReferrerOnLinks(true)
		p.AddTargetBlankToFullyQualifiedLinks(false)
		mdPolicy = p
	})
	var buf bytes.Buffer
	if err := mdConv.Convert([]byte(src), &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(mdPolicy.SanitizeBytes(buf.Bytes())) // #nosec: sanitized by bluemonday
}
