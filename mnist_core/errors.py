class LabError(Exception):
    """A problem the user can fix (bad input, missing data, bad name).

    Its message is one line meant for people; the CLI prints it and exits 2,
    the dashboard shows it with st.error.
    """
