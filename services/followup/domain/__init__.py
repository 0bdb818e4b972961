"""Pure follow-up domain: denials, deadlines, priority, aging, statements, 276/277."""
