"""The weekly report: build data, render HTML, deliver over SMTP, schedule."""
