"""The enrolment service. See docs/services/enrolment.md."""
