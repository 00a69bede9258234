"""The Discord surface: slash commands, buttons, reactions and job cards on discord.py 2.x."""
