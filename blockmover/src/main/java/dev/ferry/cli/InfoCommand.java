package dev.ferry.cli;

import dev.ferry.util.Sizes;
import dev.ferry.repo.IndexFile;
import dev.ferry.repo.KeySlot;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryConfig;
import dev.ferry.repo.RepositoryException;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

@Command(name = "info", description = "Show a repository: identity, format, keys and how much it stores.")
final class InfoCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Override
    public Integer call() throws Exception {
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, true);
            RepositoryConfig c = repo.config();
            List<StoreObject> packs = store.list("data/");
            long packBytes = packs.stream().mapToLong(StoreObject::size).sum();
            main.out.printf("repository:     %s%n", store.location());
            main.out.printf("id:             %s%n", c.id());
            main.out.printf("format version: %d%n", c.version());
            main.out.printf("created:        %s%n", c.created());
            main.out.printf("pack size:      %s%n", Sizes.human(c.packSize()));
            main.out.printf("key slots:      %d%n", store.list(KeySlot.PREFIX).size());
            main.out.printf("index files:    %d%n", store.list(IndexFile.PREFIX).size());
            main.out.printf("packs:          %d (%s)%n", packs.size(), Sizes.human(packBytes));
            main.out.printf("chunks:         %d%n", repo.indexedChunks());
            if (!repo.indexDamage().isEmpty()) {
                for (RepositoryException e : repo.indexDamage()) {
                    main.err.println("error: " + e.getMessage());
                }
                main.err.println("the chunks of damaged index files are not counted and cannot be read: run "
                        + "'ferry repair index' to rebuild the index from the packs");
                return ExitCodes.DAMAGE;
            }
        }
        return ExitCodes.OK;
    }
}
