"""The monitoring dashboard (`whalecopy dashboard`): the warehouse and the live store, read-only, in one web app."""
