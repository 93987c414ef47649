"""Campaign metadata schema and templates, creation wizard, chain binding (factory, indexer), public campaign
pages, live depth.
"""
