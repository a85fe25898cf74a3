package web

import (
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// mailer sends one plain-text email.
type mailer interface {
	send(to, subject, body string) error
}

func newMailer(c SMTPConfig, log *slog.Logger) mailer {
	if c.Host == "" {
		return logMailer{log: log}
	}
	return smtpMailer{c: c}
}

// logMailer writes emails to the log, for nodes without SMTP.
type logMailer struct{ log *slog.Logger }

func (m logMailer) send(to, subject, body string) error {
	m.log.Info("email (no SMTP configured, not sent)", "to", to, "subject", subject, "body", body)
	return nil
}

type smtpMailer struct{ c SMTPConfig }

func (m smtpMailer) send(to, subject, body string) error {
	if strings.ContainsAny(to, "\r\n") || strings.ContainsAny(subject, "\r\n") {
		return fmt.Errorf("header injection refused")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		m.c.From, to, mime.QEncoding.Encode("utf-8", subject), time.Now().UTC().Format(time.RFC1123Z))
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	addr := net.JoinHostPort(m.c.Host, strconv.Itoa(m.c.Port))
	var a smtp.Auth
	if m.c.Username != "" {
		a = smtp.PlainAuth("", m.c.Username, m.c.Password, m.c.Host)
	}
	if err := smtp.SendMail(addr, a, m.c.From, []string{to}, []byte(b.String())); err != nil {
		return fmt.Errorf("send mail to %s via %s: %w", to, addr, err)
	}
	return nil
}
