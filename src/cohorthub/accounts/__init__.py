"""Dashboard accounts: people who sign in, their roles, sessions and sign-in limits."""
