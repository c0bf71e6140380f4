"""An OpenWhisk-style function: main() takes the parameters as a dict and
returns a dict that becomes the JSON result."""


def main(args):
    return {"greeting": "Hello, " + args.get("name", "stranger") + "!"}
