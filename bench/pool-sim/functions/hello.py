"""A function with nothing to load: its specialize is only the agent receiving the code."""


def main(args):
    return {"greeting": "Hello, " + args.get("name", "stranger") + "!"}
