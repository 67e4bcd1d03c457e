//! Python literal values (what `ast.literal_eval` reads), for task arguments.
