"""The insights service: live tables of the enrolment campaign on faust-streaming. See docs/services/insights.md."""
