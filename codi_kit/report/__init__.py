"""What a person sees of a run: report.md, its sections and figures, the generated-data check."""
