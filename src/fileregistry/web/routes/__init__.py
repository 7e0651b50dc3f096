"""UI routes by area: auth (sign in/out), sources, file systems, jobs."""
