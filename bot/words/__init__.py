"""Every sentence people read and the neutral message layouts; imports the domain only."""
